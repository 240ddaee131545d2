// All provider emulators behind one dispatcher, for the local server (emulators/server.ts) and
// for tests that route outbound fetches by host name (hostMap).
//
// Combined-server layout (PORT = EMULATOR_PORT, default 8790):
//   http://127.0.0.1:PORT/plant-id/v3      → Plant.id  (PLANT_ID_API_URL)
//   http://127.0.0.1:PORT/plantnet         → Pl@ntNet  (PLANTNET_API_URL)
//   http://127.0.0.1:PORT/trefle/api/v1    → Trefle    (TREFLE_API_URL)
//   http://127.0.0.1:PORT/openai/v1        → OpenAI    (OPENAI_API_URL)
//   http://127.0.0.1:PORT/email            → email API (EMAIL_API_URL)
//   http://127.0.0.1:PORT/{google,github}  → OAuth providers; /firebase → Firebase tokens; /sentry → Sentry
// Control API:
//   GET  /__health                 → 200 {"status":"ok"}
//   GET  /__control                → current mode, call count and busy time (busyMs) of every emulator
//   POST /__control/{name}         → JSON body = partial mode (see ModePatch); 400 when invalid
//   POST /__control/reset          → every emulator back to its initial mode and state
// Media (when createEmulators gets `mediaBaseUrl`, as the local server does):
//   GET  /media/{plant-id,plantnet}/… → the image files the answers link to (SVG drawings)
// Web Push (path kept, see emulators/push.ts):
//   POST /push → a subscription whose endpoint is on this server; POST /push/{id} → a push message;
//   GET  /push → the pushes received

import { emulatorsBusyMs, parseModePatch, type Emulator, type EmulatorName } from "./common";
import { mediaResponse } from "./media";
import { createEmailEmulator, type EmailEmulator, type EmailEmulatorOptions } from "./email";
import { createGitHubOAuthEmulator, type GitHubOAuthEmulator } from "./oauth-github";
import { createFirebaseEmulator, type FirebaseEmulator } from "./firebase";
import { createGoogleOAuthEmulator, type GoogleOAuthEmulator } from "./oauth-google";
import { createSentryEmulator, type SentryEmulator } from "./sentry";
import { createOpenAIEmulator, type OpenAIEmulator, type OpenAIEmulatorOptions } from "./openai";
import { createPushEmulator, PUSH_EMULATOR_HOST, type PushEmulator, type PushSubscriptionStore } from "./push";
import { createPlantIdEmulator, type PlantIdEmulator, type PlantIdEmulatorOptions } from "./plant-id";
import { createPlantNetEmulator, type PlantNetEmulator, type PlantNetEmulatorOptions } from "./plantnet";
import { createTrefleEmulator, type TrefleEmulator, type TrefleEmulatorOptions } from "./trefle";

export type { CommonFailure, Emulator, EmulatorMode, EmulatorName, ModePatch, RecordedRequest } from "./common";
export { DEFAULT_API_KEY, NOT_A_PLANT_MARKER } from "./common";
export type { OpenAIFailure } from "./openai";
export type { EmailEmulator, OpenAIEmulator, PlantIdEmulator, PlantNetEmulator, PushEmulator, TrefleEmulator };
export type { EmulatedSubscription, ForcedPushStatus, PushSubscriptionStore, ReceivedPush, StoredPushSubscription } from "./push";

export const EMULATOR_NAMES: readonly EmulatorName[] = ["plant-id", "plantnet", "trefle", "openai", "email"];

/** Any emulator, whatever its own failure values. */
export type AnyEmulator = Emulator<string>;

export interface CreateEmulatorsOptions {
  /** Keys accepted by every emulator (default ["emulator-key"]); per-emulator options win. */
  apiKeys?: string[];
  plantId?: PlantIdEmulatorOptions;
  plantnet?: PlantNetEmulatorOptions;
  trefle?: TrefleEmulatorOptions;
  openai?: OpenAIEmulatorOptions;
  email?: EmailEmulatorOptions;
  /**
   * Google and GitHub sign-in for local runs (prefixes /google and /github). Google needs the
   * `iss` its ID tokens carry, which must equal the Worker's GOOGLE_ISSUER.
   */
  oauth?: { googleIssuer: string; clientId?: string; clientSecret?: string };
  /**
   * The combined server's media base, e.g. "http://127.0.0.1:8790/media": Plant.id and Pl@ntNet
   * answers then link to images this server serves (under /media/plant-id and /media/plantnet)
   * instead of hosts that never resolve.
   */
  mediaBaseUrl?: string;
  /**
   * Origin of the push endpoints `push.subscribe()` hands out, e.g. "http://127.0.0.1:8790" for
   * the combined server (default https://push.emulator.test). `POST /push` over HTTP always
   * uses the origin it was called on.
   */
  pushBaseUrl?: string;
  /** Keeps push subscriptions across restarts (the Node server: a JSON file under the state directory). */
  pushStore?: PushSubscriptionStore;
}

/** Client credentials the local OAuth emulators accept (npm start configures the Worker with them). */
export const LOCAL_OAUTH_CLIENT = { clientId: "emulator-client", clientSecret: "emulator-secret" } as const;

/** The Firebase project the local Firebase emulator signs for (npm start configures the Worker with it). */
export const LOCAL_FIREBASE_PROJECT = "plant-community-local";

export interface Emulators {
  plantId: PlantIdEmulator;
  plantnet: PlantNetEmulator;
  trefle: TrefleEmulator;
  openai: OpenAIEmulator;
  email: EmailEmulator;
  google: GoogleOAuthEmulator | null;
  github: GitHubOAuthEmulator | null;
  /** Error reports (prefix /sentry; DSN `http://emulatorkey@HOST:PORT/sentry/1`). */
  sentry: SentryEmulator;
  /** Firebase ID tokens and their JWKS for the mobile sign-in (prefix /firebase). */
  firebase: FirebaseEmulator;
  /** A Web Push service with the browsers behind it (prefix /push, host push.emulator.test). */
  push: PushEmulator;
  byName: Readonly<Record<EmulatorName, AnyEmulator>>;
  /** The combined server: path prefixes per emulator plus the control API (see above). */
  route(req: Request): Promise<Response>;
  /** Resets every emulator (modes, counters, quotas, stored results, outbox). */
  reset(): void;
}

export function createEmulators(options: CreateEmulatorsOptions = {}): Emulators {
  const shared = options.apiKeys ? { apiKeys: options.apiKeys } : {};
  const media = options.mediaBaseUrl?.replace(/\/+$/, "");
  const plantId = createPlantIdEmulator({ ...shared, ...(media ? { mediaBaseUrl: `${media}/plant-id` } : {}), ...options.plantId });
  const plantnet = createPlantNetEmulator({ ...shared, ...(media ? { mediaBaseUrl: `${media}/plantnet` } : {}), ...options.plantnet });
  const trefle = createTrefleEmulator({ ...shared, ...options.trefle });
  const openai = createOpenAIEmulator({ ...shared, ...options.openai });
  const email = createEmailEmulator({ ...shared, ...options.email });
  const byName: Record<EmulatorName, AnyEmulator> = { "plant-id": plantId, plantnet, trefle, openai, email };
  const oauthClient = {
    clientId: options.oauth?.clientId ?? LOCAL_OAUTH_CLIENT.clientId,
    clientSecret: options.oauth?.clientSecret ?? LOCAL_OAUTH_CLIENT.clientSecret,
  };
  const google = options.oauth ? createGoogleOAuthEmulator({ ...oauthClient, issuer: options.oauth.googleIssuer }) : null;
  const github = options.oauth ? createGitHubOAuthEmulator(oauthClient) : null;
  const sentry = createSentryEmulator();
  const firebase = createFirebaseEmulator({ projectId: LOCAL_FIREBASE_PROJECT });
  const push = createPushEmulator({
    ...(options.pushBaseUrl ? { baseUrl: options.pushBaseUrl } : {}),
    ...(options.pushStore ? { store: options.pushStore } : {}),
  });
  const reset = () => {
    EMULATOR_NAMES.forEach((name) => byName[name].reset());
    sentry.reset();
    push.reset();
    google?.reset();
    github?.reset();
  };

  // Every path this dispatcher answers, for the 404 that tells a caller where to go instead.
  const prefixes = [
    ...EMULATOR_NAMES.map((n) => `/${n}`),
    ...(google ? ["/google"] : []),
    ...(github ? ["/github"] : []),
    "/firebase",
    "/push",
    "/sentry",
    "/media/plant-id",
    "/media/plantnet",
    "/__health",
    "/__control",
  ];

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const [, first = "", ...rest] = url.pathname.split("/");
    if (first === "__health") return json({ status: "ok" });
    if (first === "__control") return control(req, rest.join("/"));
    if (first === "media" && (rest[0] === "plant-id" || rest[0] === "plantnet") && rest.length > 1) return mediaResponse(req, url.pathname);
    if (first === "google" && google) return google.handle(await withPath(req, `/${rest.join("/")}`));
    if (first === "github" && github) return github.handle(await withPath(req, `/${rest.join("/")}`));
    if (first === "push") return push.handle(req);
    if (first === "firebase") return firebase.handle(await withPath(req, `/${rest.join("/")}`));
    if (first === "sentry") {
      if (req.method === "GET" && rest.join("/") === "events") return json({ events: sentry.events });
      return sentry.handle(await withPath(req, `/${rest.join("/")}`));
    }
    if (!isEmulatorName(first)) return json({ error: `no emulator at ${url.pathname}; prefixes: ${prefixes.join(", ")}` }, 404);
    return byName[first].handle(await withPath(req, `/${rest.join("/")}`));
  }

  async function control(req: Request, target: string): Promise<Response> {
    if (target === "") {
      if (req.method !== "GET") return json({ error: "use GET /__control" }, 405);
      return json(state());
    }
    if (req.method !== "POST") return json({ error: `use POST /__control/${target}` }, 405);
    if (target === "reset") {
      reset();
      return json(state());
    }
    if (!isEmulatorName(target))
      return json({ error: `unknown emulator "${target}"; expected one of ${EMULATOR_NAMES.join(", ")} or reset` }, 404);
    let body: unknown;
    try {
      body = JSON.parse(await req.text());
    } catch {
      return json({ error: "body must be JSON" }, 400);
    }
    const emulator = byName[target];
    const parsed = parseModePatch(body, emulator.failures);
    if (!parsed.ok) return json({ error: parsed.error }, 400);
    emulator.setMode(parsed.patch);
    return json({ name: target, mode: emulator.mode, calls: emulator.calls });
  }

  function state() {
    return {
      /** Time during which any emulator was working (see emulatorsBusyMs). */
      busyMs: Math.round(emulatorsBusyMs() * 10) / 10,
      emulators: Object.fromEntries(
        EMULATOR_NAMES.map((name) => [
          name,
          {
            mode: byName[name].mode,
            calls: byName[name].calls,
            busyMs: Math.round(byName[name].busyMs * 10) / 10,
            failures: byName[name].failures,
          },
        ]),
      ),
    };
  }

  return { plantId, plantnet, trefle, openai, email, google, github, sentry, firebase, push, byName, route, reset };
}

function isEmulatorName(value: string): value is EmulatorName {
  return (EMULATOR_NAMES as readonly string[]).includes(value);
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8" } });
}

/** The same request at another path (body buffered, signal kept so aborts still reach "hang"). */
async function withPath(req: Request, pathname: string): Promise<Request> {
  const url = new URL(req.url);
  url.pathname = pathname;
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  return new Request(url, { method: req.method, headers: req.headers, body: hasBody ? await req.arrayBuffer() : null, signal: req.signal });
}

// ---------------------------------------------------------------------------------------------
// Host-based routing for tests

/**
 * Host names tests point the Worker at; each maps to one emulator with the path unchanged.
 * (push.emulator.test, where push endpoints live, is routed to `push` by hostMap.)
 */
export const EMULATOR_HOSTS: Readonly<Record<string, EmulatorName>> = {
  "plant-id.emulator.test": "plant-id",
  "plantnet.emulator.test": "plantnet",
  "trefle.emulator.test": "trefle",
  "openai.emulator.test": "openai",
  "email.emulator.test": "email",
};

/** Base URLs matching EMULATOR_HOSTS, named like the Worker's configuration variables. */
export const EMULATOR_TEST_URLS = {
  PLANT_ID_API_URL: "https://plant-id.emulator.test/v3",
  PLANTNET_API_URL: "https://plantnet.emulator.test",
  TREFLE_API_URL: "https://trefle.emulator.test/api/v1",
  OPENAI_API_URL: "https://openai.emulator.test/v1",
  EMAIL_API_URL: "https://email.emulator.test",
} as const;

/** Base URLs of the combined server at `origin` (e.g. "http://127.0.0.1:8790"). */
export function emulatorBaseUrls(origin: string): Record<keyof typeof EMULATOR_TEST_URLS, string> {
  const base = origin.replace(/\/+$/, "");
  return {
    PLANT_ID_API_URL: `${base}/plant-id/v3`,
    PLANTNET_API_URL: `${base}/plantnet`,
    TREFLE_API_URL: `${base}/trefle/api/v1`,
    OPENAI_API_URL: `${base}/openai/v1`,
    EMAIL_API_URL: `${base}/email`,
  };
}

/**
 * A fetch-shaped router for a fetch spy: requests to an `*.emulator.test` host are answered by
 * that emulator (a fresh Response per call); any other URL gives `undefined` so the caller can
 * fall through to the real fetch or fail the test.
 */
export function hostMap(emulators: Emulators): (input: RequestInfo | URL, init?: RequestInit) => Promise<Response> | undefined {
  return (input, init) => {
    const request = input instanceof Request && init === undefined ? input : new Request(input, init);
    const host = new URL(request.url).hostname;
    if (host === PUSH_EMULATOR_HOST) return emulators.push.handle(request);
    const name = EMULATOR_HOSTS[host];
    return name ? emulators.byName[name].handle(request) : undefined;
  };
}
