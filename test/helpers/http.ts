/** Calling the Worker end to end through its default export, as a client would. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { createApp } from "../../src/app";

export const BASE = "https://api.test";
let ipCounter = 0;

/** A fresh client address, so per-IP limits of one test do not leak into another. */
export function freshIp(): string {
  ipCounter++;
  return `198.51.${Math.floor(ipCounter / 250) % 250}.${(ipCounter % 250) + 1}`;
}

export interface CallOptions {
  method?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  cookies?: Record<string, string>;
  bearer?: string;
  ip?: string;
}

export function call(path: string, opts: CallOptions = {}): Promise<Response> {
  const headers = new Headers(opts.headers);
  if (opts.json !== undefined) headers.set("Content-Type", "application/json");
  if (opts.cookies) headers.set("Cookie", cookieHeader(opts.cookies));
  if (opts.bearer) headers.set("Authorization", `Bearer ${opts.bearer}`);
  headers.set("CF-Connecting-IP", opts.ip ?? freshIp());
  return exports.default.fetch(
    new Request(`${BASE}${path}`, {
      method: opts.method ?? (opts.json !== undefined || opts.body !== undefined ? "POST" : "GET"),
      headers,
      body: opts.json !== undefined ? JSON.stringify(opts.json) : opts.body,
      redirect: "manual",
    }),
  );
}

export interface SetCookie {
  name: string;
  value: string;
  attributes: Record<string, string | true>;
}

export function setCookies(res: Response): Record<string, SetCookie> {
  const out: Record<string, SetCookie> = {};
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(";").map((p) => p.trim());
    const eq = pair!.indexOf("=");
    const name = pair!.slice(0, eq);
    const attributes: Record<string, string | true> = {};
    for (const a of attrs) {
      const i = a.indexOf("=");
      if (i === -1) attributes[a.toLowerCase()] = true;
      else attributes[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
    }
    out[name] = { name, value: decodeURIComponent(pair!.slice(eq + 1)), attributes };
  }
  return out;
}

export async function expectError(res: Response, status: number, code: string) {
  const { expect } = await import("vitest");
  expect(res.status, await res.clone().text()).toBe(status);
  const body = (await res.json()) as {
    error: boolean;
    code: string;
    message: string;
    request_id: string;
    errors?: Record<string, string[]>;
  };
  expect(body.error).toBe(true);
  expect(body.code).toBe(code);
  expect(body.request_id).toBe(res.headers.get("X-Request-ID"));
  return body;
}

/** A paginated list (API.md §0). */
export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

/** Asserts the status (showing the body when it differs) and returns the parsed JSON body. */
export async function jsonWithStatus<T>(res: Response, status: number): Promise<T> {
  const { expect } = await import("vitest");
  expect(res.status, await res.clone().text()).toBe(status);
  return (await res.json()) as T;
}

/** A `Cookie` request header holding `cookies`. */
export function cookieHeader(cookies: Record<string, string>): string {
  return Object.entries(cookies)
    .map(([k, v]) => `${k}=${v}`)
    .join("; ");
}

/**
 * Calls the app as deployed outside local development (ENVIRONMENT "staging": `__Host-` cookie
 * names, Secure cookies), from a fresh address, with `cookies` sent as a browser would.
 */
export async function fetchStaging(path: string, init: RequestInit & { cookies?: Record<string, string> } = {}): Promise<Response> {
  const { cookies, ...rest } = init;
  const headers = new Headers(rest.headers);
  headers.set("CF-Connecting-IP", freshIp());
  if (cookies) headers.set("Cookie", cookieHeader(cookies));
  const ctx = createExecutionContext();
  const staging = { ...env, ENVIRONMENT: "staging" } as typeof env;
  const res = await createApp().fetch(new Request(`${BASE}${path}`, { ...rest, headers }), staging, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/**
 * One anonymous `identify/` of `bytes` (multipart `image`), answered once what the Worker left
 * running after the answer (cache writes, hit counts) is done too, so none of it lands in a
 * later test.
 */
export async function identifyAnonymously(bytes: Uint8Array): Promise<Response> {
  const form = new FormData();
  form.append("image", new File([bytes], "leaf.png", { type: "image/png" }));
  const ctx = createExecutionContext();
  const res = await createApp().request(
    "/api/v1/plant-identification/identify/",
    { method: "POST", body: form, headers: { "CF-Connecting-IP": freshIp() } },
    env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}
