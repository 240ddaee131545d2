/**
 * OpenAI (the care-guide writer) failing in every way a provider can: no answer in time, a body
 * still coming when the time is up, the connection closed mid-JSON, a body cut short, a 200 of another shape, an empty `choices`, a
 * body past the read limit, a 429 without Retry-After. The client turns each into a typed error
 * of the right kind; the care route answers the rule-based advice instead (never an error),
 * stores nothing, so the guide is written once OpenAI answers again; an explicit regenerate
 * answers 503 CARE_UNAVAILABLE with Retry-After.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hostMap } from "../../emulators/index";
import { createApp } from "../../src/app";
import { MAX_PROVIDER_BODY_BYTES } from "../../src/providers/http";
import { generateCareGuide } from "../../src/providers/openai";
import type { ProviderError } from "../../src/providers/types";
import { expectError, freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();
const HOST = "openai.emulator.test";
const settings = { baseUrl: env.OPENAI_API_URL, apiKey: "emulator-key", model: "gpt-5-mini", timeoutMs: 5000 };
const plant = { scientificName: "Monstera deliciosa", language: "en" };

/** The emulator's own good answer, as text. */
async function goodAnswer(request: Request): Promise<string> {
  return (await hostMap(emulators)(request))!.text();
}

/** Each failure, set up on the emulator (or in front of it); `timeoutMs` the client's timeout for it. */
const FAILURES: { name: string; kind: ProviderError["kind"]; timeoutMs?: number; arrange: () => void }[] = [
  { name: "no answer within the timeout", kind: "timeout", timeoutMs: 200, arrange: () => emulators.openai.setMode({ failure: "hang" }) },
  {
    name: "the connection closed mid-JSON",
    kind: "network",
    arrange: () => {
      emulators.overrides[HOST] = async (request) => {
        const text = await goodAnswer(request);
        const bytes = new TextEncoder().encode(text.slice(0, text.length >> 1));
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(bytes);
            controller.error(new TypeError("Network connection lost."));
          },
        });
        return new Response(body, { headers: { "Content-Type": "application/json" } });
      };
    },
  },
  {
    name: "headers in time, the body stalling past the timeout",
    kind: "timeout",
    timeoutMs: 200,
    arrange: () => {
      emulators.overrides[HOST] = async (request) => {
        const text = await goodAnswer(request);
        // As a real fetch's body: the call's signal ends it with its reason.
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(text.slice(0, 20)));
            request.signal.addEventListener("abort", () => controller.error(request.signal.reason));
          },
        });
        return new Response(body, { headers: { "Content-Type": "application/json" } });
      };
    },
  },
  { name: "a body cut short (truncated JSON)", kind: "malformed", arrange: () => emulators.openai.setMode({ failure: "malformed" }) },
  {
    name: "a 200 that is JSON of another shape",
    kind: "malformed",
    arrange: () => {
      emulators.overrides[HOST] = async () => Response.json({ object: "list", data: [{ text: "Water weekly." }] });
    },
  },
  {
    name: "an empty choices list",
    kind: "malformed",
    arrange: () => {
      emulators.overrides[HOST] = async (request) => Response.json({ ...JSON.parse(await goodAnswer(request)), choices: [] });
    },
  },
  {
    name: "a body past the read limit",
    kind: "malformed",
    arrange: () => {
      emulators.overrides[HOST] = async (request) =>
        Response.json({ ...JSON.parse(await goodAnswer(request)), padding: "x".repeat(MAX_PROVIDER_BODY_BYTES) });
    },
  },
  {
    name: "a 429 without Retry-After",
    kind: "rate_limited",
    arrange: () => {
      emulators.openai.setMode({ failure: "429" });
      emulators.overrides[HOST] = async (request) => {
        const answer = (await hostMap(emulators)(request))!;
        const headers = new Headers(answer.headers);
        headers.delete("Retry-After");
        return new Response(answer.body, { status: answer.status, headers });
      };
    },
  },
];

async function species() {
  const id = crypto.randomUUID();
  await env.DB.prepare(
    "INSERT INTO species (id, scientific_name, common_names, light_requirements, water_requirements) VALUES (?, ?, '[]', 'partial_shade', 'moderate')",
  )
    .bind(id, `Monstera failii ${id.slice(0, 8)}`)
    .run();
  return id;
}

/** The care route through the app with `overrides` on its configuration (a short OpenAI timeout). */
async function care(id: string, bearer: string, query = "", overrides: Record<string, string> = {}) {
  const ctx = createExecutionContext();
  const res = await createApp().request(
    `/api/v1/plant-identification/species/${id}/care/${query}`,
    { headers: { Authorization: `Bearer ${bearer}`, "CF-Connecting-IP": freshIp() } },
    { ...env, ...overrides },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

const storedGuides = async (id: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM care_guides WHERE species_id = ?").bind(id).first<{ n: number }>())!.n;

describe.each(FAILURES)("OpenAI: $name", ({ kind, timeoutMs, arrange }) => {
  it(`the client throws a ProviderError of kind ${kind}`, async () => {
    arrange();
    const error = await generateCareGuide({ ...settings, timeoutMs: timeoutMs ?? settings.timeoutMs }, plant).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ name: "ProviderError", provider: "openai", kind });
    expect((error as ProviderError).retryable).toBe(true);
    if (kind === "rate_limited") expect((error as ProviderError).retryAfterS).toBeUndefined();
  });

  it("the care route answers the rule-based advice and stores nothing; the guide is written once OpenAI answers; regenerate is 503", async () => {
    const u = await bearerUser();
    const id = await species();
    const timeout = { OPENAI_TIMEOUT_MS: String(timeoutMs ?? 5000) };
    arrange();
    const res = await care(id, u.access, "", timeout);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { care_instructions: { source: string } }).care_instructions.source).toBe("rules");
    expect(await storedGuides(id)).toBe(0);

    const regenerated = await care(id, u.access, "?regenerate=true", timeout);
    await expectError(regenerated, 503, "CARE_UNAVAILABLE");
    expect(Number(regenerated.headers.get("Retry-After"))).toBeGreaterThan(0);

    emulators.reset();
    for (const key of Object.keys(emulators.overrides)) delete emulators.overrides[key];
    const recovered = await care(id, u.access);
    expect(((await recovered.json()) as { care_instructions: { source: string } }).care_instructions.source).toBe("openai");
    expect(await storedGuides(id)).toBe(1);
  });
});
