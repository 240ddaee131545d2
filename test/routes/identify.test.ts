import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { COORDINATION_TIMEOUT_MS } from "../../src/services/provider-calls";
import { catalogueCare, catalogueCareAhead } from "../../src/services/identification-requests";
import { makeJpeg, makePng, makePngHeaderOnly, padToSize } from "../helpers/images";
import { call, freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();
const PATH = "/api/v1/plant-identification/identify/";
let seedCounter = 0;

async function photo(opts: { text?: string; width?: number; height?: number } = {}): Promise<Uint8Array> {
  seedCounter++;
  return makePng(opts.width ?? 320, opts.height ?? 240, {
    seed: `identify-${seedCounter}-${Math.random()}`,
    ...(opts.text ? { text: opts.text } : {}),
  });
}

function form(bytes: Uint8Array, name = "leaf.png", type = "image/png", field = "image"): FormData {
  const f = new FormData();
  f.append(field, new File([bytes], name, { type }));
  return f;
}

interface IdentifyBody {
  success: boolean;
  error?: string;
  code?: string;
  plant_name?: string;
  scientific_name?: string;
  confidence?: number;
  suggestions?: {
    scientific_name: string;
    probability: number;
    confidence: number;
    sources: string[];
    plant_id_probability?: number;
    plantnet_score?: number;
    rank: number;
    similar_images: unknown[];
  }[];
  disease_detection?: { is_healthy: boolean } | null;
  cached?: { plant_id: boolean; plantnet: boolean };
  care_instructions?: Record<string, unknown> | null;
  request_id?: string;
  summary?: string;
}

async function identify(bytes: Uint8Array, init: { bearer?: string; ip?: string; name?: string; type?: string } = {}) {
  const res = await call(PATH, { method: "POST", body: form(bytes, init.name, init.type), bearer: init.bearer, ip: init.ip });
  return { res, body: (await res.json()) as IdentifyBody };
}

/** Calls the app with some settings overridden (timeouts, limits) for one request. */
async function identifyWith(overrides: Record<string, string>, bytes: Uint8Array) {
  const ctx = createExecutionContext();
  const res = await createApp().request(
    PATH,
    { method: "POST", body: form(bytes), headers: { "CF-Connecting-IP": freshIp() } },
    { ...env, ...overrides },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return { res, body: (await res.json()) as IdentifyBody };
}

describe("POST identify/ (synchronous, seed-compatible)", () => {
  it("merges both providers; agreement raises confidence above either alone", async () => {
    const { res, body } = await identify(await photo(), { ip: freshIp() });
    expect(res.status).toBe(200);
    expect(body.success).toBe(true);
    const top = body.suggestions![0]!;
    expect(top.rank).toBe(1);
    expect(top.sources).toEqual(["plant_id", "plantnet"]);
    expect(top.probability).toBeGreaterThan(top.plant_id_probability!);
    expect(top.probability).toBeGreaterThan(top.plantnet_score!);
    expect(body.confidence).toBe(top.probability);
    // API.md §5d: the web client reads each suggestion's `confidence`, the same as `probability`.
    for (const suggestion of body.suggestions!) expect(suggestion.confidence).toBe(suggestion.probability);
    expect(body.scientific_name).toBe(top.scientific_name);
    // A species only one provider proposes keeps exactly that provider's score.
    for (const s of body.suggestions!) {
      if (s.sources.length === 1) expect(s.probability).toBe(s.plant_id_probability ?? s.plantnet_score);
    }
    const ranks = body.suggestions!.map((s) => s.rank);
    expect(ranks).toEqual(ranks.map((_, i) => i + 1));
    expect(body.suggestions!.map((s) => s.probability)).toEqual([...body.suggestions!.map((s) => s.probability)].sort((a, b) => b - a));
    expect(body.cached).toEqual({ plant_id: false, plantnet: false });
    expect(body.disease_detection).toMatchObject({ is_healthy: expect.any(Boolean) });
    expect(body.summary).toContain(top.scientific_name);
    // Pl@ntNet got multipart with its key in the query and options in the query.
    const plantnetCall = emulators.plantnet.requests.at(-1)!;
    expect(plantnetCall.path).toBe("/v2/identify/all");
    expect(plantnetCall.search).toContain("include-related-images=true");
    expect(emulators.plantId.requests.at(-1)!.search).toContain("details=");
  });

  it("gives the catalogue care in the identification's language (English, saying so, for one it is not written in)", async () => {
    const name = `Ficus lingua ${crypto.randomUUID().slice(0, 8)}`;
    await env.DB.prepare(
      "INSERT INTO species (id, scientific_name, light_requirements, water_requirements) VALUES (?, ?, 'partial_shade', 'high')",
    )
      .bind(crypto.randomUUID(), name)
      .run();
    const inGerman = await catalogueCareAhead(env, "de").careFor(name);
    expect(inGerman).toMatchObject({ source: "rules", language: "de" });
    expect([inGerman!.light, inGerman!.water]).toEqual([expect.stringMatching(/^Halbschatten:/), expect.stringMatching(/feucht halten/)]);
    // The species row is kept for a minute for every language: the next language is not the first's.
    const inJapanese = await catalogueCareAhead(env, "ja").careFor(name);
    expect(inJapanese).toMatchObject({ source: "rules", language: "en", water: "Keep the soil evenly moist; do not let it dry out." });
  });

  it("answers with the top suggestion's catalogue care, looked up once per name while the providers answer", async () => {
    const { body } = await identify(await photo(), { ip: freshIp() });
    expect(body.success).toBe(true);
    const expected = await catalogueCare(env, body.scientific_name!, "en");
    expect(body.care_instructions).toEqual(expected === null ? null : JSON.parse(JSON.stringify(expected)));

    const ahead = catalogueCareAhead(env, "en");
    ahead.onAnswer({
      provider: "plantnet",
      isPlant: true,
      health: null,
      suggestions: [{ scientificName: body.scientific_name! }],
    } as never);
    expect(ahead.careFor(body.scientific_name!.toUpperCase())).toBe(ahead.careFor(body.scientific_name!));
    expect(await ahead.careFor(body.scientific_name!)).toEqual(expected);
  });

  it("ignores a failed care lookup ahead for a name the merge does not pick, and shows it for one it does", async () => {
    // A database that fails every statement bound to one name (a lookup of that name), and
    // answers every other as the real one does.
    const failing = `Failus lookupus ${Math.random().toString(36).slice(2)}`;
    const broken = { all: () => Promise.reject(new Error("D1 down")), raw: () => Promise.reject(new Error("D1 down")) };
    const real = env.DB;
    const db = new Proxy(real, {
      get(target, prop) {
        if (prop !== "prepare") {
          const value = Reflect.get(target, prop);
          return typeof value === "function" ? value.bind(target) : value;
        }
        return (query: string) => {
          const statement = target.prepare(query);
          return new Proxy(statement, {
            get(s, p) {
              if (p === "bind")
                return (...args: unknown[]) =>
                  args.some((a) => typeof a === "string" && a.toLowerCase() === failing.toLowerCase()) ? broken : s.bind(...args);
              const value = Reflect.get(s, p);
              return typeof value === "function" ? value.bind(s) : value;
            },
          });
        };
      },
    });
    const ahead = catalogueCareAhead({ ...env, DB: db }, "en");
    let unhandled = 0;
    const onUnhandled = () => {
      unhandled++;
    };
    globalThis.addEventListener("unhandledrejection", onUnhandled);
    try {
      // The provider answering first named the failing species; the merge then picks another.
      ahead.onAnswer({ provider: "plantnet", isPlant: true, health: null, suggestions: [{ scientificName: failing }] } as never);
      const picked = "Monstera deliciosa";
      expect(await ahead.careFor(picked)).toEqual(await catalogueCare(env, picked, "en"));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toBe(0);
      // Had the merge picked it, its caller would see the failure (the identify route answers 500).
      const error = await ahead.careFor(failing).then(
        () => null,
        (err: unknown) => err as Error & { cause?: unknown },
      );
      expect(String(error?.cause ?? error)).toMatch(/D1 down/);
    } finally {
      globalThis.removeEventListener("unhandledrejection", onUnhandled);
    }
  });

  it("answers the web client's CORS request from http://localhost:5173 without credentials", async () => {
    const res = await call(PATH, { method: "POST", body: form(await photo()), headers: { Origin: "http://localhost:5173" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("http://localhost:5173");
  });

  it("serves identical bytes from the cache with zero upstream calls", async () => {
    const bytes = await photo();
    const miss = await identify(bytes);
    // A miss times every step of each provider call: cache, single flight (with the breaker's gate), call, settle.
    const missStages = (miss.res.headers.get("Server-Timing") ?? "").split(", ").map((s) => s.split(";")[0]);
    for (const provider of ["plant_id", "plantnet"]) {
      for (const step of ["kv", "flight", "call", "settle"]) expect(missStages).toContain(`${provider}_${step}`);
    }
    const before = { plantId: emulators.plantId.calls, plantnet: emulators.plantnet.calls };
    const { res, body } = await identify(bytes);
    expect(body.success).toBe(true);
    expect(body.cached).toEqual({ plant_id: true, plantnet: true });
    expect({ plantId: emulators.plantId.calls, plantnet: emulators.plantnet.calls }).toEqual(before);
    // Each stage's time is in Server-Timing (bench/cache.ts reads it).
    const stages = (res.headers.get("Server-Timing") ?? "").split(", ").map((s) => s.split(";")[0]);
    expect([...stages].sort()).toEqual(["care", "limit", "plant_id_kv", "plantnet_kv", "providers", "total", "upload", "validate"]);
    expect(res.headers.get("Server-Timing")).toMatch(/^(\w+;dur=\d+(, )?)+$/);
  });

  it("makes one upstream call per provider for 5 concurrent identical uploads (single flight)", async () => {
    const bytes = await photo();
    emulators.plantId.setMode({ latencyMs: 150 });
    emulators.plantnet.setMode({ latencyMs: 150 });
    const results = await Promise.all(Array.from({ length: 5 }, () => identify(bytes)));
    expect(results.every((r) => r.body.success)).toBe(true);
    expect(new Set(results.map((r) => r.body.scientific_name)).size).toBe(1);
    expect(emulators.plantId.calls).toBe(1);
    expect(emulators.plantnet.calls).toBe(1);
  });

  it("keeps followers waiting for a leader slower than the coordination timeout: still one upstream call", {
    timeout: 30_000,
  }, async () => {
    const bytes = await photo();
    emulators.plantId.setMode({ latencyMs: COORDINATION_TIMEOUT_MS + 1_000 });
    emulators.plantnet.setMode({ latencyMs: COORDINATION_TIMEOUT_MS + 1_000 });
    const results = await Promise.all(Array.from({ length: 3 }, () => identify(bytes)));
    expect(results.every((r) => r.body.success)).toBe(true);
    expect(emulators.plantId.calls).toBe(1);
    expect(emulators.plantnet.calls).toBe(1);
  });

  it("shares one failed upstream call among concurrent identical uploads", async () => {
    const bytes = await photo();
    // A failure is shared only with callers already waiting (the next caller tries again), so all
    // five must join the flight before the leader's call fails: the latency is that window, and
    // it must outlast the spread of five concurrent uploads on a loaded machine.
    emulators.plantId.setMode({ failure: "500", latencyMs: 1000 });
    const results = await Promise.all(Array.from({ length: 5 }, () => identify(bytes)));
    expect(emulators.plantId.calls).toBe(1);
    expect(emulators.plantnet.calls).toBe(1);
    for (const r of results) expect(r.body.suggestions!.every((s) => s.sources.join() === "plantnet")).toBe(true);
  });

  it("calls the two providers in parallel (each fake waits for the other to start)", async () => {
    let started = 0;
    let release!: () => void;
    const bothStarted = new Promise<void>((r) => (release = r));
    const barrier = async () => {
      started++;
      if (started === 2) release();
      // Sequential calls would never see the second start: fail instead of hanging.
      await Promise.race([bothStarted, new Promise((_, reject) => setTimeout(() => reject(new Error("not parallel")), 10_000))]);
    };
    emulators.overrides["plant-id.emulator.test"] = async (req) => {
      await barrier().catch(() => {
        throw new Error("Plant.id called while Pl@ntNet was not");
      });
      return emulators.plantId.handle(req);
    };
    emulators.overrides["plantnet.emulator.test"] = async (req) => {
      await barrier().catch(() => {
        throw new Error("Pl@ntNet called while Plant.id was not");
      });
      return emulators.plantnet.handle(req);
    };
    const { body } = await identify(await photo());
    expect(started).toBe(2);
    expect(body.success).toBe(true);
    expect(body.suggestions![0]!.sources).toEqual(["plant_id", "plantnet"]);
  });

  it("returns the other provider's suggestions when one fails (partial result)", async () => {
    emulators.plantnet.setMode({ failure: "500" });
    const a = await identify(await photo());
    expect(a.body.success).toBe(true);
    expect(a.body.suggestions!.every((s) => s.sources.join() === "plant_id")).toBe(true);

    emulators.plantnet.setMode({ failure: "none" });
    emulators.plantId.setMode({ failure: "malformed" });
    const b = await identify(await photo());
    expect(b.body.success).toBe(true);
    expect(b.body.suggestions!.every((s) => s.sources.join() === "plantnet")).toBe(true);

    emulators.plantId.setMode({ failure: "429", retryAfterSeconds: 7 });
    const c = await identify(await photo());
    expect(c.body.success).toBe(true);
    expect(c.body.suggestions!.every((s) => s.sources.join() === "plantnet")).toBe(true);
  });

  it("answers 503 in the seed shape when both providers are down — never a 500 or made-up result", async () => {
    emulators.plantId.setMode({ failure: "500", times: 1 });
    emulators.plantnet.setMode({ failure: "malformed", times: 1 });
    const { res, body } = await identify(await photo());
    expect(res.status).toBe(503);
    expect(body).toMatchObject({ success: false, error: expect.stringMatching(/temporarily unavailable/) });
    expect(res.headers.get("Retry-After")).toBeTruthy();
  });

  it("a provider that does not answer in time is cut off by its timeout", async () => {
    emulators.plantnet.setMode({ failure: "hang" });
    const started = Date.now();
    const { body } = await identifyWith({ PLANTNET_TIMEOUT_MS: "300" }, await photo());
    // 300 ms timeout against the default 20 s: the bound leaves room for a loaded machine.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(body.success).toBe(true);
    expect(body.suggestions!.every((s) => s.sources.join() === "plant_id")).toBe(true);
  });

  it("treats Pl@ntNet's 404 'Species not found' as no match, not an outage", async () => {
    const { res, body } = await identify(await photo({ text: "NOTAPLANT" }));
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ success: false, error: "Unable to identify plant. Please try a clearer image." });
    expect(emulators.plantnet.calls).toBe(1);
  });

  it("answers an Idempotency-Key refusal in its own shape, as docs/api.md's table lists it", async () => {
    const u = await bearerUser();
    const bytes = await photo();
    const bad = await call(PATH, { method: "POST", body: form(bytes), bearer: u.access, headers: { "Idempotency-Key": "two words" } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ success: false, code: "IDEMPOTENCY_KEY_INVALID" });
    const key = crypto.randomUUID();
    const first = await call(PATH, { method: "POST", body: form(bytes), bearer: u.access, headers: { "Idempotency-Key": key } });
    expect(first.status).toBe(200);
    const other = await call(PATH, {
      method: "POST",
      body: form(await photo({ text: "OTHER" })),
      bearer: u.access,
      headers: { "Idempotency-Key": key },
    });
    expect(other.status).toBe(422);
    expect(await other.json()).toMatchObject({ success: false, code: "IDEMPOTENCY_KEY_REUSED" });
  });

  it("saves the identification for a signed-in user and returns request_id", async () => {
    const u = await bearerUser();
    const bytes = await photo();
    const { body } = await identify(bytes, { bearer: u.access });
    expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
    const row = await env.DB.prepare("SELECT user_id, status, image_hashes FROM identification_requests WHERE id = ?")
      .bind(body.request_id)
      .first<{
        user_id: string;
        status: string;
        image_hashes: string;
      }>();
    expect(row?.user_id).toBe(u.userId);
    expect(["identified", "needs_help"]).toContain(row?.status);
    const [stored] = JSON.parse(row!.image_hashes) as string[];
    expect(await env.IMAGES.head(`images/${stored}`)).not.toBeNull();
    const results = await env.DB.prepare(
      "SELECT scientific_name, rank, is_primary FROM identification_results WHERE request_id = ? ORDER BY rank",
    )
      .bind(body.request_id)
      .all<{
        scientific_name: string;
        rank: number;
        is_primary: number;
      }>();
    expect(results.results.map((r) => r.scientific_name)).toEqual(body.suggestions!.map((s) => s.scientific_name));
    expect(results.results[0]!.is_primary).toBe(1);
    const species = await env.DB.prepare("SELECT identification_count FROM species WHERE lower(scientific_name) = lower(?)")
      .bind(body.scientific_name)
      .first<{
        identification_count: number;
      }>();
    expect(species?.identification_count).toBeGreaterThanOrEqual(1);
  });

  it("refuses anonymous callers when ALLOW_ANONYMOUS_IDENTIFY is false", async () => {
    const { res, body } = await identifyWith({ ALLOW_ANONYMOUS_IDENTIFY: "false" }, await photo());
    expect(res.status).toBe(401);
    expect(body.success).toBe(false);
    expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
  });

  it("a bearer token that is not valid is refused (401, its reason), never taken for anonymous use", async () => {
    const signedOut = await bearerUser();
    expect((await call("/api/v1/auth/logout/", { method: "POST", bearer: signedOut.access })).status).toBe(200);
    for (const [bearer, code] of [
      ["not-a-jwt", "TOKEN_INVALID"],
      [signedOut.access, "TOKEN_INVALID"],
    ] as const) {
      const calls = emulators.plantId.calls + emulators.plantnet.calls;
      const { res, body } = await identify(await photo(), { bearer, ip: freshIp() });
      expect(res.status, bearer).toBe(401);
      expect(body).toMatchObject({ success: false, code });
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
      expect(emulators.plantId.calls + emulators.plantnet.calls).toBe(calls);
    }
    // The token without "Bearer " is meant to sign in too: told the form, not identified anonymously.
    const signedIn = await bearerUser();
    const calls = emulators.plantId.calls + emulators.plantnet.calls;
    const res = await call(PATH, { method: "POST", body: form(await photo()), headers: { Authorization: signedIn.access } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      success: false,
      code: "AUTHENTICATION_REQUIRED",
      error: expect.stringContaining('"Bearer <access token>"'),
    });
    expect(emulators.plantId.calls + emulators.plantnet.calls).toBe(calls);
  });

  it("limits identifications per address with 429 and Retry-After", async () => {
    const ip = freshIp();
    const ctxs: Response[] = [];
    for (let i = 0; i < 3; i++) {
      const ctx = createExecutionContext();
      ctxs.push(
        await createApp().request(
          PATH,
          { method: "POST", body: form(await photo()), headers: { "CF-Connecting-IP": ip } },
          { ...env, IDENTIFY_RATE_LIMIT: "2/3600" },
          ctx,
        ),
      );
      await waitOnExecutionContext(ctx);
    }
    expect(ctxs.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(Number(ctxs[2]!.headers.get("Retry-After"))).toBeGreaterThan(3000);
    expect(((await ctxs[2]!.json()) as IdentifyBody).success).toBe(false);
  });
});

describe("our own failures", () => {
  it("answer 500 in the seed shape, never a stack trace", async () => {
    // Every D1 call fails. Signed in, so the path must write (the identification is saved): an
    // anonymous one may read nothing from D1 at all, its care being cached in the isolate.
    const user = await bearerUser();
    const down = () => Promise.reject(new Error("D1 down"));
    const statement: object = new Proxy({}, { get: (_, prop) => (prop === "then" ? undefined : prop === "bind" ? () => statement : down) });
    // A session of it (the D1 Sessions API) is itself, with no bookmark yet.
    const session: Record<PropertyKey, unknown> = { prepare: () => statement, withSession: () => brokenDb, getBookmark: () => null };
    const brokenDb = new Proxy({}, { get: (_, prop) => (prop === "then" ? undefined : (session[prop] ?? down)) }) as D1Database;
    const ctx = createExecutionContext();
    const res = await createApp().request(
      PATH,
      { method: "POST", body: form(await photo()), headers: { "CF-Connecting-IP": freshIp(), Authorization: `Bearer ${user.access}` } },
      { ...env, DB: brokenDb },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(500);
    const body = (await res.json()) as IdentifyBody;
    expect(body).toEqual({ success: false, error: expect.stringMatching(/went wrong/), code: "INTERNAL_ERROR" });
  });
});

describe("bad uploads (API.md §2.4): clear message, nothing written", () => {
  async function counts() {
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM identification_requests").first<{ n: number }>();
    const objects = await env.IMAGES.list({ prefix: "images/" });
    return { rows: rows?.n ?? 0, objects: objects.objects.length };
  }

  it("rejects each bad upload with its message and stores nothing", async () => {
    const u = await bearerUser();
    const before = await counts();
    const cases: { name: string; body: FormData | string; headers?: Record<string, string>; message: RegExp }[] = [
      {
        name: "no file",
        body: (() => {
          const f = new FormData();
          f.append("other", "x");
          return f;
        })(),
        message: /No image file provided/,
      },
      { name: "not multipart", body: "{}", headers: { "Content-Type": "application/json" }, message: /No image file provided/ },
      {
        name: "text file",
        body: form(new TextEncoder().encode("just some text, definitely not an image"), "plant.txt", "text/plain"),
        message: /Invalid file type: text\/plain\. Allowed types: JPEG, PNG, WebP/,
      },
      { name: "spoofed type", body: form(await photo(), "plant.jpg", "image/jpeg"), message: /does not match/ },
      { name: "too small", body: form(await makePng(120, 90), "tiny.png"), message: /Image too small: 120x90px/ },
      { name: "too wide", body: form(makePngHeaderOnly(9000, 300), "wide.png"), message: /Image too large: 9000x300px/ },
      { name: "aspect", body: form(makePngHeaderOnly(5000, 400), "strip.png"), message: /aspect ratio too extreme/ },
      {
        name: "too big",
        body: form(padToSize(makeJpeg(400, 300), 12.3 * 1024 * 1024), "big.jpg", "image/jpeg"),
        message: /File too large: 12\.3MB\. Maximum size: 10MB/,
      },
      { name: "empty", body: form(new Uint8Array(0), "empty.png"), message: /empty/ },
    ];
    for (const c of cases) {
      const res = await call(PATH, { method: "POST", body: c.body, headers: c.headers, bearer: u.access });
      expect(res.status, c.name).toBe(400);
      const body = (await res.json()) as IdentifyBody;
      expect(body.success, c.name).toBe(false);
      expect(body.error, c.name).toMatch(c.message);
    }
    expect(await counts()).toEqual(before);
    expect(emulators.plantId.calls + emulators.plantnet.calls).toBe(0);
  });
});

describe("identify/health", () => {
  it("reports both providers available with closed circuits", async () => {
    const res = await call("/api/v1/plant-identification/identify/health/");
    expect(await res.json()).toEqual({
      status: "ok",
      plant_id_available: true,
      plantnet_available: true,
      circuits: { plant_id: "closed", plantnet: "closed" },
    });
  });
});
