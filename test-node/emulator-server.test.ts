import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulatorServer, type EmulatorServer } from "../emulators/server";
import { freePort } from "../scripts/local-stack";
import { makePng } from "../test/helpers/images";

let server: EmulatorServer;

beforeAll(async () => {
  server = await startEmulatorServer({ port: 0, env: {} });
});
afterAll(async () => {
  await server.close();
});

describe("emulator HTTP server (what npm start runs)", () => {
  it("serves every emulator under its prefix with the provider's own auth", async () => {
    expect((await fetch(`${server.url}/__health`)).status).toBe(200);
    const usage = await fetch(`${server.url}/plant-id/v3/usage_info`, { headers: { "Api-Key": "emulator-key" } });
    expect(usage.status).toBe(200);
    expect((await fetch(`${server.url}/plant-id/v3/usage_info`)).status).toBe(401);
    const projects = await fetch(`${server.url}/plantnet/v2/projects?api-key=emulator-key`);
    expect(projects.status).toBe(200);
    const trefle = await fetch(`${server.url}/trefle/api/v1/plants/search?q=monstera&token=emulator-key`);
    expect(((await trefle.json()) as { data: unknown[] }).data.length).toBeGreaterThan(0);
    const models = await fetch(`${server.url}/openai/v1/models`, { headers: { Authorization: "Bearer emulator-key" } });
    expect(models.status).toBe(200);
    const mail = await fetch(`${server.url}/email/emails`, {
      method: "POST",
      headers: { Authorization: "Bearer emulator-key", "Content-Type": "application/json" },
      body: JSON.stringify({ from: "a@example.com", to: "b@example.com", subject: "hi", text: "hello" }),
    });
    expect(mail.status).toBe(200);
  });

  it("takes Sentry envelopes and lists them", async () => {
    const { reportToSentry } = await import("../src/providers/sentry");
    const sent = await reportToSentry(`http://emulatorkey@${new URL(server.url).host}/sentry/1`, {
      error: new Error("local boom"),
      environment: "local",
      release: "test",
    });
    expect(sent).toBe(true);
    const events = (await (await fetch(`${server.url}/sentry/events`)).json()) as {
      events: { event: { exception: { values: { value: string }[] } } }[];
    };
    expect(events.events.at(-1)!.event.exception.values[0]!.value).toBe("local boom");
  });

  it("switches failure modes through the control API", async () => {
    const set = await fetch(`${server.url}/__control/plant-id`, {
      method: "POST",
      body: JSON.stringify({ failure: "429", retryAfterSeconds: 9, times: 1 }),
    });
    expect(set.status).toBe(200);
    const limited = await fetch(`${server.url}/plant-id/v3/usage_info`, { headers: { "Api-Key": "emulator-key" } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("Retry-After")).toBe("9");
    expect((await fetch(`${server.url}/plant-id/v3/usage_info`, { headers: { "Api-Key": "emulator-key" } })).status).toBe(200);
    expect((await fetch(`${server.url}/__control/plant-id`, { method: "POST", body: "{nope" })).status).toBe(400);
  });
});

describe("emulator media (real image files for similar images)", () => {
  let local: EmulatorServer;
  beforeAll(async () => {
    local = await startEmulatorServer({ port: await freePort(), env: {} });
  });
  afterAll(async () => {
    await local.close();
  });

  it("reports each emulator's own working time (busyMs), not the upload or the scripted latency", async () => {
    const state = async () =>
      (await (await fetch(`${server.url}/__control`)).json()) as { busyMs: number; emulators: Record<string, { busyMs: number }> };
    const busy = async () => (await state()).emulators["plant-id"]!.busyMs;
    const anyBefore = (await state()).busyMs;
    const before = await busy();
    await fetch(`${server.url}/__control/plant-id`, { method: "POST", body: JSON.stringify({ latencyMs: 300 }) });
    try {
      const png = await makePng(320, 240, { seed: "busy-time" });
      // The body trickles in: its upload must not count as the emulator's work.
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const sent = fetch(`${server.url}/plant-id/v3/identification`, {
        method: "POST",
        headers: { "Api-Key": "emulator-key", "Content-Type": "application/json" },
        body: readable,
        duplex: "half",
      } as RequestInit);
      const writer = writable.getWriter();
      const json = new TextEncoder().encode(JSON.stringify({ images: [Buffer.from(png).toString("base64")] }));
      await writer.write(json.subarray(0, 10));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await writer.write(json.subarray(10));
      await writer.close();
      const res = await sent;
      expect(res.status).toBe(200);
      await res.text();
      const spent = (await busy()) - before;
      expect(spent).toBeGreaterThan(0);
      expect(spent).toBeLessThan(200);
      // Only this emulator worked meanwhile: the time any emulator worked grew by as much.
      expect((await state()).busyMs - anyBefore).toBeCloseTo(spent, 0);
    } finally {
      await fetch(`${server.url}/__control/plant-id`, { method: "POST", body: JSON.stringify({ latencyMs: 0 }) });
    }
  });

  it("links Plant.id and Pl@ntNet images to itself, and every link is an SVG picture", async () => {
    const png = Buffer.from(await makePng(320, 240, { seed: "media" }));
    const plantId = (await (
      await fetch(`${local.url}/plant-id/v3/identification`, {
        method: "POST",
        headers: { "Api-Key": "emulator-key", "content-type": "application/json" },
        body: JSON.stringify({ images: [png.toString("base64")] }),
      })
    ).json()) as { result: { classification: { suggestions: { similar_images: { url: string; url_small: string }[] }[] } } };
    const form = new FormData();
    form.append("images", new Blob([png], { type: "image/png" }), "leaf.png");
    form.append("organs", "auto");
    const plantnet = (await (
      await fetch(`${local.url}/plantnet/v2/identify/all?api-key=emulator-key&include-related-images=true`, { method: "POST", body: form })
    ).json()) as { results: { images: { url: { o: string; m: string; s: string } }[] }[] };

    const urls = [
      ...plantId.result.classification.suggestions.flatMap((s) => s.similar_images.flatMap((i) => [i.url, i.url_small])),
      ...plantnet.results.flatMap((r) => r.images.flatMap((i) => [i.url.o, i.url.m, i.url.s])),
    ];
    expect(urls.length).toBeGreaterThan(10);
    for (const url of urls) expect(url.startsWith(`${local.url}/media/`), url).toBe(true);
    const bodies = new Set<string>();
    for (const url of urls.slice(0, 12)) {
      const res = await fetch(url);
      expect(res.status, url).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^image\/svg\+xml/);
      const svg = await res.text();
      expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      bodies.add(svg);
    }
    // One picture per URL, not one for all.
    expect(bodies.size).toBeGreaterThan(1);
    expect((await fetch(`${local.url}/media/plantnet/image/s/abc`, { method: "POST" })).status).toBe(405);
    expect((await fetch(`${local.url}/media/nobody/x.jpg`)).status).toBe(404);
  });

  it("keeps the never-resolving hosts when it does not know its own address (port 0)", async () => {
    const png = Buffer.from(await makePng(320, 240, { seed: "media-0" }));
    const res = await fetch(`${server.url}/plant-id/v3/identification`, {
      method: "POST",
      headers: { "Api-Key": "emulator-key", "content-type": "application/json" },
      body: JSON.stringify({ images: [png.toString("base64")] }),
    });
    expect(JSON.stringify(await res.json())).toContain("https://plant-id.emulator.invalid/similar_images/");
  });
});

describe("push emulator across a restart (npm start with the same STATE_DIR)", () => {
  const vapid = { subject: "mailto:ops@example.com" };

  it("keeps its subscriptions: a device subscribed before the restart gets its pushes after it, and still only from its own VAPID key", async () => {
    const { generateVapidKeys, sendPush } = await import("../src/lib/web-push");
    const stateDir = mkdtempSync(join(tmpdir(), "push-emulator-state-"));
    const port = await freePort();
    const keys = { ...(await generateVapidKeys()), ...vapid };
    const otherKeys = { ...(await generateVapidKeys()), ...vapid };
    let running = await startEmulatorServer({ port, env: {}, stateDir });
    try {
      const made = await fetch(`${running.url}/push`, { method: "POST", body: JSON.stringify({ applicationServerKey: keys.publicKey }) });
      expect(made.status).toBe(201);
      const subscription = (await made.json()) as { endpoint: string; keys: { p256dh: string; auth: string } };
      expect((await sendPush(subscription, "before the restart", keys, { ttlS: 60 })).status).toBe(201);

      await running.close();
      running = await startEmulatorServer({ port, env: {}, stateDir });

      expect((await sendPush(subscription, "after the restart", keys, { ttlS: 60 })).status).toBe(201);
      const { received } = (await (await fetch(`${running.url}/push`)).json()) as { received: { endpoint: string; payload: string }[] };
      expect(received).toEqual([expect.objectContaining({ endpoint: subscription.endpoint, payload: "after the restart" })]);
      // The subscription came back with the key it was made for.
      expect((await sendPush(subscription, "from someone else", otherKeys, { ttlS: 60 })).status).toBe(403);

      // Reset forgets it, for good: after another restart it is unknown.
      expect((await fetch(`${running.url}/__control/reset`, { method: "POST" })).status).toBe(200);
      await running.close();
      running = await startEmulatorServer({ port, env: {}, stateDir });
      expect((await sendPush(subscription, "after a reset", keys, { ttlS: 60 })).status).toBe(404);
    } finally {
      await running.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it("keeps nothing without a state directory (tests and programmatic use)", async () => {
    const { generateVapidKeys, sendPush } = await import("../src/lib/web-push");
    const port = await freePort();
    const keys = { ...(await generateVapidKeys()), ...vapid };
    let running = await startEmulatorServer({ port, env: {} });
    try {
      const subscription = (await (await fetch(`${running.url}/push`, { method: "POST" })).json()) as {
        endpoint: string;
        keys: { p256dh: string; auth: string };
      };
      await running.close();
      running = await startEmulatorServer({ port, env: {} });
      expect((await sendPush(subscription, "after the restart", keys, { ttlS: 60 })).status).toBe(404);
    } finally {
      await running.close();
    }
  });
});
