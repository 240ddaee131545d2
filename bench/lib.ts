/**
 * Shared pieces of the benchmarks: timing and percentiles, bounded concurrency, HTTP helpers,
 * benchmark users, test images and WebSocket clients. Everything talks to 127.0.0.1 only.
 */
import { readdirSync, readFileSync } from "node:fs";
import { makePng, padToSize } from "../test/helpers/images";

export const PASSWORD = "Fern-Gully-Moss-42!";
export const HTTP_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// Timing

export const now = (): number => performance.now();
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of already sorted samples (p in (0, 100]). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** A Server-Timing header's stages: `name;dur=ms, …` → [name, ms] pairs. */
export function serverTimings(header: string | null): [string, number][] {
  if (!header) return [];
  return header.split(",").flatMap((part) => {
    const [name, ...params] = part.trim().split(";");
    const dur = params.map((p) => /^\s*dur=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return name && dur !== undefined ? [[name.trim(), Number(dur)] as [string, number]] : [];
  });
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    n: sorted.length,
    min: round(sorted[0] ?? NaN),
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? NaN),
    mean: round(sorted.reduce((s, v) => s + v, 0) / (sorted.length || 1)),
  };
}

/** A wall-clock budget for one benchmark; every loop checks it. */
export class Budget {
  private readonly end: number;
  constructor(
    readonly label: string,
    readonly ms: number,
  ) {
    this.end = now() + ms;
  }
  get left(): number {
    return this.end - now();
  }
  get expired(): boolean {
    return this.left <= 0;
  }
  check(what: string): void {
    if (this.expired) throw new BenchFailure(`${this.label}: time limit of ${Math.round(this.ms / 1000)} s reached while ${what}`);
  }
}

/** A correctness failure (lost/duplicated work, missing messages, unexpected answers): exit code 1. */
export class BenchFailure extends Error {}

/**
 * Runs fn(0..count-1) with at most `concurrency` in flight, in index order, and stops starting
 * new items once the budget is spent (those items then throw).
 */
export async function pool<T>(count: number, concurrency: number, budget: Budget, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      budget.check(`running item ${i + 1} of ${count}`);
      results[i] = await fn(i);
    }
  });
  await Promise.all(workers);
  return results;
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface JsonResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
  ms: number;
}

export async function request<T = unknown>(url: string, init: RequestInit = {}): Promise<JsonResponse<T>> {
  const started = now();
  const res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  const text = await res.text();
  const ms = now() - started;
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: body as T, headers: res.headers, ms };
}

export function expectStatus(res: JsonResponse, status: number, what: string): void {
  if (res.status !== status) {
    throw new BenchFailure(
      `${what}: expected HTTP ${status}, got ${res.status}: ${JSON.stringify(res.body).slice(0, 500)} (X-Request-ID ${res.headers.get("x-request-id")})`,
    );
  }
}

/** A multipart body with one PNG file part. */
export function imageForm(field: string, bytes: Uint8Array, filename = "plant.png"): FormData {
  const form = new FormData();
  form.append(field, new File([bytes as Uint8Array<ArrayBuffer>], filename, { type: "image/png" }));
  return form;
}

// ---------------------------------------------------------------------------------------------
// Images

/** Distinct per benchmark run, so "distinct images" are never cache hits from an earlier run. */
export const RUN_ID = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

/** A real 320×240 PNG unique to (RUN_ID, label), padded to exactly `size` bytes. */
export async function benchImage(label: string, size: number): Promise<Uint8Array> {
  const png = await makePng(320, 240, { seed: `${RUN_ID}:${label}` });
  return size > png.length + 12 ? padToSize(png, size) : png;
}

// ---------------------------------------------------------------------------------------------
// Users

export interface BenchUser {
  username: string;
  /** Access token (bearer). */
  access: string;
}

/** Registers a fresh user; the access token comes from the access_token cookie register sets. */
let userSeq = 0;
export async function registerUser(baseUrl: string, label: string): Promise<BenchUser> {
  const username = `bench_${RUN_ID}_${label}_${++userSeq}`; // unique even when a benchmark runs again
  const res = await request(`${baseUrl}/api/v1/auth/register/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, email: `${username}@bench.example.com`, password: PASSWORD }),
  });
  expectStatus(res, 201, `register ${username}`);
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith("access_token="));
  const access = cookie?.slice("access_token=".length).split(";")[0];
  if (!access) throw new BenchFailure(`register ${username}: no access_token cookie in ${JSON.stringify(res.headers.getSetCookie())}`);
  return { username, access };
}

/** POST /auth/token/ → bearer access token (the mobile/API sign-in). */
export async function tokenFor(baseUrl: string, username: string): Promise<string> {
  const res = await request<{ access: string }>(`${baseUrl}/api/v1/auth/token/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  expectStatus(res, 200, `token for ${username}`);
  return res.body.access;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** POST requests/ with one image → 202 → request_id. */
export async function submitRequest(
  baseUrl: string,
  token: string,
  image: Uint8Array,
): Promise<{ id: string; ms: number; stages: [string, number][] }> {
  const res = await request<{ request_id: string; status: string }>(`${baseUrl}/api/v1/plant-identification/requests/`, {
    method: "POST",
    headers: bearer(token),
    body: imageForm("image_1", image),
  });
  expectStatus(res, 202, "submit identification request");
  if (typeof res.body.request_id !== "string") throw new BenchFailure(`submit: no request_id in ${JSON.stringify(res.body)}`);
  return { id: res.body.request_id, ms: res.ms, stages: serverTimings(res.headers.get("server-timing")) };
}

// ---------------------------------------------------------------------------------------------
// Emulator control

export async function emulatorControl(emulatorUrl: string, target: string, body: unknown): Promise<void> {
  const res = await request(`${emulatorUrl}/__control/${target}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expectStatus(res, 200, `emulator control ${target}`);
}

/**
 * Milliseconds each emulator has spent on its own work, upload and scripted latency excluded,
 * and under `any` the time during which at least one of them was working (GET /__control).
 */
export async function emulatorBusyMs(emulatorUrl: string): Promise<Record<string, number>> {
  const res = await request<{ busyMs?: number; emulators: Record<string, { busyMs?: number }> }>(`${emulatorUrl}/__control`);
  expectStatus(res, 200, "emulator state");
  return {
    ...Object.fromEntries(Object.entries(res.body.emulators).map(([k, v]) => [k, v.busyMs ?? Number.NaN])),
    any: res.body.busyMs ?? Number.NaN,
  };
}

/** Upstream call counters of the emulators (GET /__control). */
export async function emulatorCalls(emulatorUrl: string): Promise<Record<string, number>> {
  const res = await request<{ emulators: Record<string, { calls: number }> }>(`${emulatorUrl}/__control`);
  expectStatus(res, 200, "emulator state");
  return Object.fromEntries(Object.entries(res.body.emulators).map(([k, v]) => [k, v.calls]));
}

// ---------------------------------------------------------------------------------------------
// WebSockets

export interface WsMessage {
  text: string;
  /** performance.now() at arrival */
  at: number;
  type: string;
  request_id?: string;
  status?: string;
  stage?: string;
  results_count?: number;
}

export interface BenchSocket {
  index: number;
  owner: string;
  ws: WebSocket;
  /** Every message after `init` (pongs excluded). */
  messages: WsMessage[];
  /** Milliseconds from asking for a ticket to receiving `init`. */
  setupMs: number;
  closed: Promise<{ code: number; wasClean: boolean }>;
  closeInfo: { code: number; wasClean: boolean } | null;
  onMessage?: (m: WsMessage) => void;
}

/** Single-use ticket (bearer) → ws://…/ws/?ticket=… → resolves once `init` arrived. */
export async function openSocket(baseUrl: string, token: string, owner: string, index: number, timeoutMs = 30_000): Promise<BenchSocket> {
  const started = now();
  const ticket = await request<{ ticket: string }>(`${baseUrl}/api/v1/auth/ws-ticket/`, { method: "POST", headers: bearer(token) });
  expectStatus(ticket, 200, "ws-ticket");
  const url = `${baseUrl.replace(/^http/, "ws")}/ws/?ticket=${encodeURIComponent(ticket.body.ticket)}`;
  const ws = new WebSocket(url);
  let resolveClosed!: (v: { code: number; wasClean: boolean }) => void;
  const closed = new Promise<{ code: number; wasClean: boolean }>((resolve) => (resolveClosed = resolve));
  const socket: BenchSocket = { index, owner, ws, messages: [], setupMs: NaN, closed, closeInfo: null };
  return new Promise<BenchSocket>((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => {
      if (!ready) {
        ready = true;
        try {
          ws.close();
        } catch {
          // ignore
        }
        reject(new BenchFailure(`socket ${owner}#${index}: no init within ${timeoutMs} ms`));
      }
    }, timeoutMs);
    ws.addEventListener("message", (event) => {
      const at = now();
      const text = typeof event.data === "string" ? event.data : String(event.data);
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = { type: "unparsable" };
      }
      const type = String(parsed.type ?? "unknown");
      if (!ready) {
        if (type === "init") {
          ready = true;
          clearTimeout(timer);
          socket.setupMs = at - started;
          resolve(socket);
          return;
        }
      }
      if (type === "pong") return;
      const m: WsMessage = {
        text,
        at,
        type,
        ...(typeof parsed.request_id === "string" ? { request_id: parsed.request_id } : {}),
        ...(typeof parsed.status === "string" ? { status: parsed.status } : {}),
        ...(typeof parsed.stage === "string" ? { stage: parsed.stage } : {}),
        ...(typeof parsed.results_count === "number" ? { results_count: parsed.results_count } : {}),
      };
      socket.messages.push(m);
      socket.onMessage?.(m);
    });
    ws.addEventListener("close", (event) => {
      socket.closeInfo = { code: event.code, wasClean: event.wasClean };
      resolveClosed(socket.closeInfo);
      if (!ready) {
        ready = true;
        clearTimeout(timer);
        reject(new BenchFailure(`socket ${owner}#${index}: closed before init (code ${event.code} ${event.reason})`));
      }
    });
    ws.addEventListener("error", () => {
      // A close event follows; it settles the promise.
    });
  });
}

/** Closes every socket with 1000 and waits (bounded) for the closing handshakes. */
export async function closeAll(
  sockets: BenchSocket[],
  timeoutMs = 15_000,
): Promise<{ clean: number; unclean: number; timedOut: number; ms: number }> {
  const started = now();
  for (const s of sockets) {
    if (s.closeInfo === null) {
      try {
        s.ws.close(1000, "bench done");
      } catch {
        // already closing
      }
    }
  }
  const timeout = sleep(timeoutMs).then(() => "timeout" as const);
  let clean = 0;
  let unclean = 0;
  let timedOut = 0;
  await Promise.all(
    sockets.map(async (s) => {
      const r = await Promise.race([s.closed, timeout]);
      if (r === "timeout") timedOut++;
      else if (r.wasClean && r.code === 1000) clean++;
      else unclean++;
    }),
  );
  return { clean, unclean, timedOut, ms: now() - started };
}

/** Resolves when pred() holds (checked every intervalMs), or false when the budget ends first. */
export async function waitFor(pred: () => boolean, budget: Budget, limitMs: number, intervalMs = 50): Promise<boolean> {
  const end = now() + Math.min(limitMs, budget.left);
  while (now() < end) {
    if (pred()) return true;
    await sleep(intervalMs);
  }
  return pred();
}

export const fmtMs = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : "n/a");

/**
 * CPU time (ms) used so far by a process and all its descendants, by program: workerd (the
 * Worker, its Durable Objects and local storage simulators) and the rest (emulators, wrangler,
 * the start script). Exited processes are not counted, so take both readings while the stack
 * runs. Linux only: null elsewhere or when /proc cannot be read.
 */
export function treeCpuMs(rootPid: number | null): { workerd: number; other: number } | null {
  if (rootPid === null || process.platform !== "linux") return null;
  const tickMs = 10; // USER_HZ is 100 on Linux
  const procs: { pid: number; ppid: number; comm: string; ms: number }[] = [];
  try {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      } catch {
        continue; // exited meanwhile
      }
      const close = stat.lastIndexOf(")");
      // After the comm: state(0) ppid(1) … utime(11) stime(12)
      const fields = stat.slice(close + 2).split(" ");
      procs.push({
        pid: Number(entry),
        ppid: Number(fields[1]),
        comm: stat.slice(stat.indexOf("(") + 1, close),
        ms: (Number(fields[11]) + Number(fields[12])) * tickMs,
      });
    }
  } catch {
    return null;
  }
  const inTree = new Set([rootPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs)
      if (!inTree.has(p.pid) && inTree.has(p.ppid)) {
        inTree.add(p.pid);
        grew = true;
      }
  }
  let workerd = 0;
  let other = 0;
  for (const p of procs) if (inTree.has(p.pid)) p.comm === "workerd" ? (workerd += p.ms) : (other += p.ms);
  return { workerd, other };
}
