/// <reference types="node" />
// The provider emulators as one local HTTP server (Node 22), for `npm start`, benchmarks and
// manual testing:   npx tsx emulators/server.ts
// It adapts node:http to the web-standard handlers of emulators/index.ts: request bodies and
// response bodies are streamed, headers kept, and a client disconnect aborts the Request's
// signal (so a "hang" failure ends when the caller gives up).
//
// Environment (all optional):
//   EMULATOR_PORT                         port on 127.0.0.1 (default 8790; 0 = any free port)
//   EMULATOR_API_KEYS                     comma-separated keys every emulator accepts
//                                         (default "emulator-key")
//   EMULATOR_<NAME>_LATENCY_MS            initial latency before each answer
//   EMULATOR_<NAME>_FAILURE               none | 429 | 500 | hang | malformed
//                                         (OpenAI also: insufficient_quota | length | refusal)
//   EMULATOR_<NAME>_RETRY_AFTER_SECONDS   Retry-After of scripted 429s (default 1)
//   EMULATOR_<NAME>_TIMES                 apply the failure to the next N calls only
//   with <NAME> one of PLANT_ID, PLANTNET, TREFLE, OPENAI, EMAIL.
//   STATE_DIR                             run directly, where push subscriptions are kept
//                                         (default .wrangler/state, as npm start)
// Modes can be changed at runtime through POST /__control/{name} (see emulators/index.ts).

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { pipeline } from "node:stream/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from "node:fs";

import { parseModePatch, type EmulatorName } from "./common";
import { createEmulators, EMULATOR_NAMES, type Emulators, type PushSubscriptionStore, type StoredPushSubscription } from "./index";

export const DEFAULT_EMULATOR_PORT = 8790;
const HOST = "127.0.0.1";

export interface StartEmulatorServerOptions {
  /** Default: EMULATOR_PORT, else 8790. 0 picks a free port (see the returned `url`). */
  port?: number;
  /** Emulators to serve; default: createEmulators() configured from the environment. */
  emulators?: Emulators;
  /** Where EMULATOR_* settings are read from; default process.env. */
  env?: Record<string, string | undefined>;
  /**
   * The local state directory (npm start's STATE_DIR): push subscriptions are kept in
   * `<stateDir>/emulators/push-subscriptions.json`, so a device the service registered still gets
   * its pushes after a restart. Default: kept in memory only.
   */
  stateDir?: string;
}

/** Where the push emulator keeps its subscriptions under a state directory. */
export function pushSubscriptionsFile(stateDir: string): string {
  return join(stateDir, "emulators", "push-subscriptions.json");
}

/** Push subscriptions in a JSON file, rewritten whole (through a temporary file) on each change. */
export function pushSubscriptionFile(file: string): PushSubscriptionStore {
  return {
    load() {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw error;
      }
      try {
        const kept = (JSON.parse(text) as { subscriptions?: unknown }).subscriptions;
        if (Array.isArray(kept)) return kept as StoredPushSubscription[];
      } catch {
        // reported below
      }
      console.warn(`push emulator: ${file} is not a subscription list; starting without subscriptions`);
      return [];
    },
    save(subscriptions) {
      mkdirSync(dirname(file), { recursive: true });
      const temporary = `${file}.${process.pid}.tmp`;
      writeFileSync(temporary, `${JSON.stringify({ subscriptions }, null, 2)}\n`, { mode: 0o600 });
      renameSync(temporary, file);
    },
  };
}

export interface EmulatorServer {
  /** e.g. "http://127.0.0.1:8790" */
  url: string;
  port: number;
  emulators: Emulators;
  close(): Promise<void>;
}

export async function startEmulatorServer(options: StartEmulatorServerOptions = {}): Promise<EmulatorServer> {
  const env = options.env ?? process.env;
  const apiKeys = env.EMULATOR_API_KEYS?.split(",")
    .map((key) => key.trim())
    .filter(Boolean);
  const port = options.port ?? Number(env.EMULATOR_PORT ?? DEFAULT_EMULATOR_PORT);
  const emulators =
    options.emulators ??
    createEmulators({
      ...(apiKeys && apiKeys.length > 0 ? { apiKeys } : {}),
      // Google's ID tokens name their issuer, so the sign-in emulators need the final address.
      ...(port !== 0 ? { oauth: { googleIssuer: `http://${HOST}:${port}/google` } } : {}),
      // Similar images in answers link to this server, so a browser shows them.
      ...(port !== 0 ? { mediaBaseUrl: `http://${HOST}:${port}/media` } : {}),
      ...(options.stateDir ? { pushStore: pushSubscriptionFile(pushSubscriptionsFile(options.stateDir)) } : {}),
    });
  for (const name of EMULATOR_NAMES) {
    const fields = modeFieldsFromEnv(env, name);
    if (!fields) continue;
    const parsed = parseModePatch(fields, emulators.byName[name].failures);
    if (!parsed.ok) throw new Error(`invalid EMULATOR_${name.replace("-", "_").toUpperCase()}_* setting: ${parsed.error}`);
    emulators.byName[name].setMode(parsed.patch);
  }

  const server = createServer((req, res) => {
    void serve(emulators, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, HOST, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;

  return {
    url: `http://${HOST}:${actualPort}`,
    port: actualPort,
    emulators,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets and "hang" requests would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

/** EMULATOR_<NAME>_* settings as raw mode fields (validated by the caller per emulator). */
function modeFieldsFromEnv(env: Record<string, string | undefined>, name: EmulatorName): Record<string, unknown> | null {
  const prefix = `EMULATOR_${name.replace("-", "_").toUpperCase()}_`;
  const fields: Record<string, unknown> = {};
  const numeric: [string, string][] = [
    ["LATENCY_MS", "latencyMs"],
    ["RETRY_AFTER_SECONDS", "retryAfterSeconds"],
    ["TIMES", "times"],
  ];
  for (const [suffix, field] of numeric) {
    const value = env[prefix + suffix];
    if (value !== undefined && value !== "") fields[field] = Number(value);
  }
  const failure = env[`${prefix}FAILURE`];
  if (failure) fields.failure = failure;
  return Object.keys(fields).length > 0 ? fields : null;
}

async function serve(emulators: Emulators, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const disconnect = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) disconnect.abort(new DOMException("client disconnected", "AbortError"));
  });
  try {
    const response = await emulators.route(toRequest(req, disconnect.signal));
    await writeResponse(res, response);
  } catch (error) {
    if (disconnect.signal.aborted) return;
    console.error("emulator error:", error);
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
    res.end("emulator error");
  }
}

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = {
    method,
    headers,
    signal,
    // Node requires duplex "half" for a streamed request body. The casts bridge Node's and
    // the Workers runtime's (project-wide) declarations of the same web stream classes.
    ...(hasBody ? { body: Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>, duplex: "half" } : {}),
  };
  return new Request(new URL(req.url ?? "/", `http://${req.headers.host ?? HOST}`), init);
}

async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, key) => {
    if (key !== "set-cookie") headers[key] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  await pipeline(Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>), res);
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const server = await startEmulatorServer({ stateDir: resolve(root, process.env.STATE_DIR ?? join(".wrangler", "state")) });
  console.log(`emulators listening on ${server.url}`);
  const shutdown = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
