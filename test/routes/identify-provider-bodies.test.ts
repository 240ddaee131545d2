/**
 * A provider's answer is read up to MAX_PROVIDER_BODY_BYTES: a body past it (a misbehaving
 * upstream or proxy) fails that provider's call as malformed, never held whole in the isolate's
 * memory. The other provider still answers; with both over it, identify/ answers 503. A 200 that
 * is JSON of another shape fails the same way.
 */
import { describe, expect, it } from "vitest";
import { hostMap } from "../../emulators/index";
import { MAX_PROVIDER_BODY_BYTES } from "../../src/providers/http";
import { identifyAnonymously } from "../helpers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";

const emulators = useEmulators();
const HOSTS = { plant_id: "plant-id.emulator.test", plantnet: "plantnet.emulator.test" } as const;

/** The emulator's own good answer for `host`, padded with an unknown field past the limit. */
function paddedPastTheLimit(host: string) {
  emulators.overrides[host] = async (request) => {
    const answer = (await (await hostMap(emulators)(request)!).json()) as Record<string, unknown>;
    return Response.json({ ...answer, padding: "x".repeat(MAX_PROVIDER_BODY_BYTES) });
  };
}

async function identify() {
  const res = await identifyAnonymously(await makePng(320, 240, { seed: `huge-${Math.random()}` }));
  return { status: res.status, body: (await res.json()) as { success: boolean; code?: string; providers?: Record<string, unknown> } };
}

describe("a provider answer over the body limit", () => {
  for (const [provider, other] of [
    ["plant_id", "plantnet"],
    ["plantnet", "plant_id"],
  ] as const) {
    it(`from ${provider} fails that call as malformed; ${other} still answers`, async () => {
      paddedPastTheLimit(HOSTS[provider]);
      const { status, body } = await identify();
      expect(status).toBe(200);
      expect(body.providers?.[provider]).toEqual({ status: "failed", error: "malformed" });
      expect(body.providers?.[other]).toEqual({ status: "answered" });
    });
  }

  it("from both answers 503 PROVIDERS_UNAVAILABLE", async () => {
    paddedPastTheLimit(HOSTS.plant_id);
    paddedPastTheLimit(HOSTS.plantnet);
    const { status, body } = await identify();
    expect(status).toBe(503);
    expect(body).toMatchObject({ success: false, code: "PROVIDERS_UNAVAILABLE" });
  });
});

describe("a provider's 200 that is JSON of a shape the parser does not expect", () => {
  for (const [provider, other] of [
    ["plant_id", "plantnet"],
    ["plantnet", "plant_id"],
  ] as const) {
    it(`from ${provider} fails that call as malformed; ${other} still answers`, async () => {
      emulators.overrides[HOSTS[provider]] = async () => Response.json({ status: "ok", data: [{ name: "Monstera" }] });
      const { status, body } = await identify();
      expect(status).toBe(200);
      expect(body.providers?.[provider]).toEqual({ status: "failed", error: "malformed" });
      expect(body.providers?.[other]).toEqual({ status: "answered" });
    });
  }
});

describe("a provider's error answer with a body past the limit (a proxy's error page)", () => {
  it("fails that call as the error its status names, read no further than the detail logged; the other still answers", async () => {
    emulators.overrides[HOSTS.plant_id] = async () =>
      new Response(`<html><body>Bad gateway${" ".repeat(MAX_PROVIDER_BODY_BYTES)}</body></html>`, {
        status: 502,
        headers: { "Content-Type": "text/html" },
      });
    const { status, body } = await identify();
    expect(status).toBe(200);
    expect(body.providers?.plant_id).toEqual({ status: "failed", error: "server" });
    expect(body.providers?.plantnet).toEqual({ status: "answered" });
  });
});

describe("a Plant.id identification whose health part has a shape the parser does not expect", () => {
  for (const [what, health] of [
    ["is_healthy a string", { is_healthy: "yes" }],
    ["disease suggestions not a list", { disease: { suggestions: "none" } }],
    ["a disease without a probability", { disease: { suggestions: [{ name: "Powdery mildew" }] } }],
  ] as const) {
    it(`(${what}) still gives Plant.id's species, without a health assessment`, async () => {
      emulators.overrides[HOSTS.plant_id] = async (request) => {
        const answer = (await (await hostMap(emulators)(request)!).json()) as { result: Record<string, unknown> };
        return Response.json({ ...answer, result: { ...answer.result, ...health } });
      };
      const res = await identifyAnonymously(await makePng(320, 240, { seed: `health-shape-${Math.random()}` }));
      const body = (await res.json()) as {
        providers?: Record<string, unknown>;
        suggestions?: { sources?: string[] }[];
        disease_detection?: unknown;
      };
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.providers?.plant_id).toEqual({ status: "answered" });
      expect(body.disease_detection ?? null).toBeNull();
    });
  }
});
