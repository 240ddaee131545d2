// Shared machinery of the provider emulators: hashing and deterministic draws, base64, the
// non-plant rule, and the failure-mode controller every emulator is wrapped in.
//
// Only web-standard APIs are used here, because the same handlers run inside workerd (tests)
// and inside a Node server (emulators/server.ts).

import { DISEASES, SPECIES, type Disease, type Species } from "./species";

// ---------------------------------------------------------------------------------------------
// Emulator contract

export type EmulatorName = "plant-id" | "plantnet" | "trefle" | "openai" | "email";

export const COMMON_FAILURES = ["none", "429", "500", "hang", "malformed"] as const;
export type CommonFailure = (typeof COMMON_FAILURES)[number];

/** How an emulator misbehaves. `times` counts the calls left before `failure` reverts to "none". */
export interface EmulatorMode<F extends string = CommonFailure> {
  latencyMs: number;
  failure: F;
  /** Seconds announced in `Retry-After` on scripted 429s. */
  retryAfterSeconds: number;
  /** null = the failure stays until changed. */
  times: number | null;
}

/** What `setMode` and `POST /__control/{name}` accept. Setting `failure` also resets `times`. */
export interface ModePatch<F extends string = CommonFailure> {
  latencyMs?: number;
  failure?: F;
  retryAfterSeconds?: number;
  times?: number | null;
}

export interface RecordedRequest {
  method: string;
  path: string;
  search: string;
}

export interface Emulator<F extends string = CommonFailure> {
  readonly name: EmulatorName;
  /** Failure values this emulator understands (the common ones plus its own). */
  readonly failures: readonly F[];
  handle(req: Request): Promise<Response>;
  /** Throws RangeError on an invalid patch (see `parseModePatch`). */
  setMode(patch: ModePatch<F>): void;
  readonly mode: Readonly<EmulatorMode<F>>;
  /** Back to the initial mode, counters and state (quotas, stored results, outbox…). */
  reset(): void;
  /** Requests handled since creation or the last reset, including failed ones. */
  readonly calls: number;
  /**
   * Milliseconds spent answering normal (not failure-mode) requests since creation or the last
   * reset, counted from when the request's body had arrived: the emulator's own work, which
   * `bench/` separates from the caller's. Always 0 where the clock stands still (workerd).
   */
  readonly busyMs: number;
  readonly requests: readonly RecordedRequest[];
}

export const DEFAULT_API_KEY = "emulator-key";
export const DEFAULT_RETRY_AFTER_SECONDS = 1;

/** Upper bound for "hang", so a client without a timeout cannot pin a request forever. */
export const HANG_CAP_MS = 10 * 60 * 1000;

export function initialMode<F extends string>(failureNone: F): EmulatorMode<F> {
  return { latencyMs: 0, failure: failureNone, retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS, times: null };
}

export type ParsedModePatch<F extends string> = { ok: true; patch: ModePatch<F> } | { ok: false; error: string };

/** Validates untrusted input (the control API's JSON body) against the mode shape. */
export function parseModePatch<F extends string>(input: unknown, failures: readonly F[]): ParsedModePatch<F> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return { ok: false, error: "mode must be a JSON object" };
  }
  const known = new Set(["latencyMs", "failure", "retryAfterSeconds", "times"]);
  const unknownKeys = Object.keys(input).filter((key) => !known.has(key));
  if (unknownKeys.length > 0) return { ok: false, error: `unknown mode field(s): ${unknownKeys.join(", ")}` };

  const raw = input as Record<string, unknown>;
  const patch: ModePatch<F> = {};
  if (raw.latencyMs !== undefined) {
    if (!isNonNegativeFinite(raw.latencyMs)) return { ok: false, error: "latencyMs must be a number >= 0" };
    patch.latencyMs = raw.latencyMs;
  }
  if (raw.failure !== undefined) {
    if (typeof raw.failure !== "string" || !(failures as readonly string[]).includes(raw.failure)) {
      return { ok: false, error: `failure must be one of: ${failures.join(", ")}` };
    }
    patch.failure = raw.failure as F;
  }
  if (raw.retryAfterSeconds !== undefined) {
    if (!isNonNegativeFinite(raw.retryAfterSeconds)) return { ok: false, error: "retryAfterSeconds must be a number >= 0" };
    patch.retryAfterSeconds = raw.retryAfterSeconds;
  }
  if (raw.times !== undefined) {
    if (raw.times !== null && !(Number.isInteger(raw.times) && (raw.times as number) >= 1)) {
      return { ok: false, error: "times must be an integer >= 1 or null" };
    }
    patch.times = raw.times as number | null;
  }
  return { ok: true, patch };
}

function isNonNegativeFinite(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

/** Holds the current mode and hands out the failure for each call, counting down `times`. */
export class FailureModeController<F extends string> {
  #mode: EmulatorMode<F>;

  constructor(
    readonly failures: readonly F[],
    private readonly none: F,
  ) {
    this.#mode = initialMode(none);
  }

  get mode(): Readonly<EmulatorMode<F>> {
    return { ...this.#mode };
  }

  set(patch: ModePatch<F>): void {
    const parsed = parseModePatch(patch, this.failures);
    if (!parsed.ok) throw new RangeError(parsed.error);
    const next = { ...this.#mode };
    const { latencyMs, failure, retryAfterSeconds, times } = parsed.patch;
    if (latencyMs !== undefined) next.latencyMs = latencyMs;
    if (retryAfterSeconds !== undefined) next.retryAfterSeconds = retryAfterSeconds;
    if (failure !== undefined) {
      next.failure = failure;
      next.times = times ?? null;
    } else if (times !== undefined) {
      next.times = times;
    }
    if (next.failure === this.none) next.times = null;
    this.#mode = next;
  }

  reset(): void {
    this.#mode = initialMode(this.none);
  }

  /**
   * The failure to apply to this call, if `applies` accepts it; consuming one of `times`.
   * Failures that only affect some routes (OpenAI's "length") are taken by those routes, so
   * a `times: 1` is not used up by an unrelated call.
   */
  take(applies: (failure: F) => boolean): F {
    const { failure, times } = this.#mode;
    if (failure === this.none || !applies(failure)) return this.none;
    if (times !== null) {
      this.#mode = times <= 1 ? { ...this.#mode, failure: this.none, times: null } : { ...this.#mode, times: times - 1 };
    }
    return failure;
  }
}

/** Provider-specific answers to the common failure modes. */
export interface FaultResponses<F extends string> {
  rateLimited(retryAfterSeconds: number): Response;
  serverError(): Response;
  /** A realistic JSON body of this provider; "malformed" sends a truncated copy of it. */
  malformedSample: unknown;
  /** Emulator-specific failures that answer any route before it runs (OpenAI insufficient_quota). */
  extra?: Partial<Record<F, (mode: Readonly<EmulatorMode<F>>) => Response>>;
}

export interface EmulatorDefinition<F extends string> {
  name: EmulatorName;
  failures: readonly F[];
  faults: FaultResponses<F>;
  /** Serves a request once latency and whole-request failures have been applied. */
  route(req: Request, controller: FailureModeController<F>): Promise<Response>;
  /** Clears provider state (quotas, stored identifications, outbox) on reset(). */
  resetState?(): void;
}

/**
 * Wall-clock time during which at least one emulator of this process was working (the union of
 * every emulator's busy spans): what a caller waiting on several emulators at once, which share
 * one thread, waited for their work. Each emulator's own `busyMs` counts a span in which the
 * thread also served another emulator, so summing those would count that time twice.
 */
let working = 0;
let workingSince = 0;
let unionBusyMs = 0;

export function emulatorsBusyMs(): number {
  return unionBusyMs + (working > 0 ? performance.now() - workingSince : 0);
}

function startWork(): void {
  if (working++ === 0) workingSince = performance.now();
}

function endWork(): void {
  if (--working === 0) unionBusyMs += performance.now() - workingSince;
}

/** Wraps a provider router with call recording, latency and the failure modes. */
export function defineEmulator<F extends string>(definition: EmulatorDefinition<F>): Emulator<F> {
  const none = "none" as F;
  const controller = new FailureModeController<F>(definition.failures, none);
  const extra: NonNullable<FaultResponses<F>["extra"]> = definition.faults.extra ?? {};
  const wholeRequestFailures = new Set<string>([...COMMON_FAILURES, ...Object.keys(extra)]);
  let calls = 0;
  let busyMs = 0;
  let requests: RecordedRequest[] = [];

  /** The route, timed from when the whole body is in hand (its upload is the caller's time). */
  async function timedRoute(req: Request): Promise<Response> {
    const body = req.body ? await req.arrayBuffer() : null;
    const started = performance.now();
    startWork();
    try {
      return await definition.route(body ? new Request(req, { body }) : req, controller);
    } finally {
      busyMs += performance.now() - started;
      endWork();
    }
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    calls += 1;
    requests.push({ method: req.method, path: url.pathname, search: url.search });
    const mode = controller.mode;
    const failure = controller.take((f) => wholeRequestFailures.has(f));
    if (failure === none) {
      // latencyMs is the provider's response time: the answer leaves latencyMs after the request
      // arrived, the emulator's own work (reading and decoding a 1 MiB photo) happening inside
      // it, as a real provider's does — not added on top.
      const [response] = await Promise.all([timedRoute(req), sleep(mode.latencyMs, req.signal)]);
      return response;
    }
    await sleep(mode.latencyMs, req.signal);
    switch (failure as string) {
      case "429":
        return withRetryAfter(definition.faults.rateLimited(mode.retryAfterSeconds), mode.retryAfterSeconds);
      case "500":
        return definition.faults.serverError();
      case "hang":
        await waitForAbort(req.signal, HANG_CAP_MS);
        return new Response("emulator: hang capped", { status: 504 });
      case "malformed":
        return malformedJsonResponse(definition.faults.malformedSample);
      default: {
        const respond = extra[failure];
        if (!respond) throw new Error(`unhandled failure mode ${failure}`);
        return respond(mode);
      }
    }
  }

  return {
    name: definition.name,
    failures: definition.failures,
    handle,
    setMode: (patch) => controller.set(patch),
    get mode() {
      return controller.mode;
    },
    reset() {
      controller.reset();
      calls = 0;
      busyMs = 0;
      requests = [];
      definition.resetState?.();
    },
    get calls() {
      return calls;
    },
    get busyMs() {
      return busyMs;
    },
    get requests() {
      return requests;
    },
  };
}

function withRetryAfter(response: Response, retryAfterSeconds: number): Response {
  if (!response.headers.has("retry-after")) response.headers.set("retry-after", String(Math.ceil(retryAfterSeconds)));
  return response;
}

/** 200, declared JSON, body cut in the middle: a proper prefix of a JSON object never parses. */
function malformedJsonResponse(sample: unknown): Response {
  const text = JSON.stringify(sample);
  return new Response(text.slice(0, Math.max(1, Math.floor(text.length * 0.6))), {
    status: 200,
    headers: { "content-type": "application/json" },
  });
}

// ---------------------------------------------------------------------------------------------
// Timing

/** Waits `ms`, or rejects with the signal's reason as soon as the client gives up. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** "hang": never answers until the client aborts; gives up after `capMs` so nothing leaks. */
function waitForAbort(signal: AbortSignal, capMs: number): Promise<void> {
  return sleep(capMs, signal);
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

export function jsonResponse(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  const response = new Response(JSON.stringify(body), { status, headers });
  response.headers.set("content-type", "application/json; charset=utf-8");
  return response;
}

export async function readJsonBody(req: Request): Promise<{ ok: true; value: unknown } | { ok: false }> {
  try {
    return { ok: true, value: JSON.parse(await req.text()) };
  } catch {
    return { ok: false };
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `Authorization: Bearer <token>` → token (the last space-separated word, as Trefle reads it). */
export function bearerToken(req: Request): string | null {
  const header = req.headers.get("authorization");
  if (!header || !/^bearer\s/i.test(header)) return null;
  return header.trim().split(/\s+/).pop() ?? null;
}

// ---------------------------------------------------------------------------------------------
// Bytes, hashing, base64

export async function sha256(bytes: Uint8Array | ArrayBuffer): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
}

export async function sha256Hex(bytes: Uint8Array | ArrayBuffer): Promise<string> {
  return toHex(await sha256(bytes));
}

export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/**
 * Standard base64: alphabet characters, then at most two "=" at the very end, in whole groups of
 * four. (A single grouped regex like /^(?:[A-Za-z0-9+/]{4})*…$/ says the same but takes tens of
 * milliseconds on a 1 MiB photo; a flat character class plus a length check is linear and fast.)
 */
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

/** The runtime's own decoder: Uint8Array.fromBase64 (workerd's V8), else Node's Buffer (npm start). */
const nativeFromBase64: ((text: string) => Uint8Array) | null = (() => {
  const fromBase64 = (Uint8Array as unknown as { fromBase64?: (text: string) => Uint8Array }).fromBase64;
  if (fromBase64) return (text: string) => fromBase64.call(Uint8Array, text);
  const buffer = (globalThis as { Buffer?: { from(text: string, encoding: "base64"): Uint8Array } }).Buffer;
  return buffer ? (text: string) => new Uint8Array(buffer.from(text, "base64")) : null;
})();

/** Strict standard base64 (no data: prefix, no whitespace); null when it does not decode. */
export function decodeBase64(text: string): Uint8Array | null {
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64_CHARS.test(text)) return null;
  if (nativeFromBase64) return nativeFromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function encodeBase64(bytes: Uint8Array): string {
  // Chunked so large images do not overflow the argument limit of String.fromCharCode.
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  return btoa(binary);
}

export function randomToken(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const random = crypto.getRandomValues(new Uint8Array(length));
  let token = "";
  for (const byte of random) token += alphabet[byte % alphabet.length];
  return token;
}

// ---------------------------------------------------------------------------------------------
// The non-plant rule and deterministic identification draws

/** Test images carrying this ASCII marker anywhere in their bytes are treated as "not a plant". */
export const NOT_A_PLANT_MARKER = "NOTAPLANT";
const MARKER_BYTES = new TextEncoder().encode(NOT_A_PLANT_MARKER);

export function isNotAPlant(bytes: Uint8Array): boolean {
  outer: for (let i = 0; i + MARKER_BYTES.length <= bytes.length; i += 1) {
    for (let j = 0; j < MARKER_BYTES.length; j += 1) {
      if (bytes[i + j] !== MARKER_BYTES[j]) continue outer;
    }
    return true;
  }
  return false;
}

/**
 * Everything the identification emulators derive from the first image: the same bytes give the
 * same species everywhere (Plant.id, Pl@ntNet, and Trefle by name), with provider-specific
 * scores, so a merger sees the providers agree on the top species.
 */
export interface ImageDraw {
  hash: Uint8Array;
  hashHex: string;
  isPlant: boolean;
  /** Five distinct species, best first; alternatives come from the top species' family first. */
  ranking: Species[];
}

export async function drawFromImage(bytes: Uint8Array): Promise<ImageDraw> {
  const hash = await sha256(bytes);
  return { hash, hashHex: toHex(hash), isPlant: !isNotAPlant(bytes), ranking: rankSpecies(hash, 5) };
}

/** hash byte `index` as a fraction in [0, 1]. */
export function unit(hash: Uint8Array, index: number): number {
  return (hash[index % hash.length] ?? 0) / 255;
}

function rankSpecies(hash: Uint8Array, count: number): Species[] {
  const view = new DataView(hash.buffer, hash.byteOffset, hash.byteLength);
  const top = SPECIES[view.getUint32(0) % SPECIES.length] as Species;
  const sameFamily = SPECIES.filter((s) => s !== top && s.family === top.family);
  const others = SPECIES.filter((s) => s !== top && s.family !== top.family);
  return [top, ...rotate(sameFamily, hash[4] ?? 0), ...rotate(others, hash[5] ?? 0)].slice(0, count);
}

function rotate<T>(items: readonly T[], by: number): T[] {
  if (items.length === 0) return [];
  const offset = by % items.length;
  return [...items.slice(offset), ...items.slice(0, offset)];
}

const round4 = (value: number) => Math.round(value * 10000) / 10000;

/**
 * `count` descending probabilities: the first in [topMin, topMax], the rest sharing what is
 * left, each seeded from hash bytes starting at `seedIndex`.
 */
export function descendingScores(hash: Uint8Array, seedIndex: number, count: number, topMin: number, topMax: number): number[] {
  const top = topMin + (topMax - topMin) * unit(hash, seedIndex);
  const scores = [top];
  let left = Math.max(0, Math.min(1, 1 - top));
  for (let i = 1; i < count; i += 1) {
    const share = left * (0.25 + 0.45 * unit(hash, seedIndex + i));
    scores.push(Math.min(share, scores[i - 1] as number));
    left -= share;
  }
  return scores.map(round4);
}

/** Disease ranking for health assessments, seeded from a different part of the hash. */
export function rankDiseases(hash: Uint8Array): Disease[] {
  return rotate(DISEASES, hash[16] ?? 0);
}
