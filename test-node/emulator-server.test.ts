import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulatorServer, type EmulatorServer } from "../emulators/server";

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
