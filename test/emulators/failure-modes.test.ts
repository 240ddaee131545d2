// Every failure mode, for every emulator, through the shared controller.

import { describe, expect, it } from "vitest";

import type { Emulator } from "../../emulators/common";
import { createEmailEmulator } from "../../emulators/email";
import { createOpenAIEmulator } from "../../emulators/openai";
import { createPlantIdEmulator } from "../../emulators/plant-id";
import { createPlantNetEmulator } from "../../emulators/plantnet";
import { createTrefleEmulator } from "../../emulators/trefle";
import { makePng, plantNetForm, timed, toBase64 } from "./helpers";

interface Case {
  name: string;
  create: () => Emulator<string>;
  /** A request the emulator answers with 2xx when no failure is set. */
  request: (signal?: AbortSignal) => Request;
  /** Provider-specific parts of the scripted 429. */
  checkRateLimited: (response: Response) => Promise<void>;
}

const json = (body: unknown) => JSON.stringify(body);

const CASES: Case[] = [
  {
    name: "plant-id",
    create: createPlantIdEmulator,
    request: (signal) =>
      new Request("https://plant-id.emulator.test/v3/identification", {
        method: "POST",
        headers: { "Api-Key": "emulator-key", "content-type": "application/json" },
        body: json({ images: [toBase64(makePng(4, 4))] }),
        signal,
      }),
    checkRateLimited: async (response) => {
      expect(await response.text()).toContain("does not have sufficient number of available credits");
    },
  },
  {
    name: "plantnet",
    create: createPlantNetEmulator,
    request: (signal) =>
      new Request("https://plantnet.emulator.test/v2/identify/all?api-key=emulator-key", {
        method: "POST",
        body: plantNetForm([{ bytes: makePng(4, 4) }]),
        signal,
      }),
    checkRateLimited: async (response) => {
      expect(await response.json()).toMatchObject({ statusCode: 429, error: "Too Many Requests" });
      expect(response.headers.get("ratelimit")).toMatch(/r=0/);
      expect(response.headers.get("ratelimit-policy")).toMatch(/^"dailyQuota"/);
    },
  },
  {
    name: "trefle",
    create: createTrefleEmulator,
    request: (signal) => new Request("https://trefle.emulator.test/api/v1/plants/search?q=oak&token=emulator-key", { signal }),
    checkRateLimited: async (response) => {
      expect(await response.json()).toMatchObject({ error: true, message: expect.stringContaining("Too many requests") });
      expect(response.headers.get("ratelimit-limit")).toBe("60");
      expect(response.headers.get("ratelimit-remaining")).toBe("0");
      expect(response.headers.get("ratelimit-reset")).toMatch(/^\d+$/);
    },
  },
  {
    name: "openai",
    create: createOpenAIEmulator,
    request: (signal) =>
      new Request("https://openai.emulator.test/v1/chat/completions", {
        method: "POST",
        headers: { authorization: "Bearer emulator-key", "content-type": "application/json" },
        body: json({ model: "gpt-5-mini", messages: [{ role: "user", content: "Care for Hoya carnosa?" }] }),
        signal,
      }),
    checkRateLimited: async (response) => {
      expect(((await response.json()) as any).error).toMatchObject({ code: "rate_limit_exceeded", message: expect.any(String) });
    },
  },
  {
    name: "email",
    create: createEmailEmulator,
    request: (signal) =>
      new Request("https://email.emulator.test/emails", {
        method: "POST",
        headers: { authorization: "Bearer emulator-key", "content-type": "application/json" },
        body: json({ from: "a@example.com", to: "b@example.com", subject: "Hi", text: "Hello" }),
        signal,
      }),
    checkRateLimited: async (response) => {
      expect(await response.json()).toMatchObject({ statusCode: 429, name: "rate_limit_exceeded" });
    },
  },
];

describe.each(CASES)("$name failure modes", ({ create, request, checkRateLimited }) => {
  it("answers normally with failure none", async () => {
    const response = await create().handle(request());
    expect(response.status).toBe(200);
  });

  it("waits latencyMs before answering", async () => {
    const emulator = create();
    emulator.setMode({ latencyMs: 150 });
    const { value, ms } = await timed(() => emulator.handle(request()));
    expect(value.status).toBe(200);
    expect(ms).toBeGreaterThanOrEqual(140);
    expect(ms).toBeLessThan(10_000); // a sanity bound, loose enough for a loaded machine
  });

  it("answers 429 in the provider's shape with Retry-After (default 1 s)", async () => {
    const emulator = create();
    emulator.setMode({ failure: "429" });
    const response = await emulator.handle(request());
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBe("1");
    await checkRateLimited(response);

    emulator.setMode({ retryAfterSeconds: 7 });
    expect((await emulator.handle(request())).headers.get("retry-after")).toBe("7");
  });

  it("answers 500", async () => {
    const emulator = create();
    emulator.setMode({ failure: "500" });
    const response = await emulator.handle(request());
    expect(response.status).toBe(500);
    expect((await response.text()).length).toBeGreaterThan(0);
  });

  it("hangs until the caller's signal aborts", async () => {
    const emulator = create();
    emulator.setMode({ failure: "hang" });
    const { value, ms } = await timed(() =>
      emulator.handle(request(AbortSignal.timeout(100))).then(
        () => "answered",
        (error: unknown) => error,
      ),
    );
    expect(value).toMatchObject({ name: "TimeoutError" });
    expect(ms).toBeGreaterThanOrEqual(90);
    expect(ms).toBeLessThan(10_000); // a sanity bound, loose enough for a loaded machine
    expect(emulator.calls).toBe(1);
  });

  it("stops waiting out latency when the caller aborts", async () => {
    const emulator = create();
    emulator.setMode({ latencyMs: 60_000 });
    const controller = new AbortController();
    const pending = emulator.handle(request(controller.signal));
    controller.abort(new DOMException("gave up", "AbortError"));
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
  });

  it("answers 200 with truncated JSON for malformed", async () => {
    const emulator = create();
    emulator.setMode({ failure: "malformed" });
    const response = await emulator.handle(request());
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    const text = await response.text();
    expect(text.length).toBeGreaterThan(0);
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
  });

  it("applies a failure to the next `times` calls only, then reverts to none", async () => {
    const emulator = create();
    emulator.setMode({ failure: "500", times: 2 });
    expect((await emulator.handle(request())).status).toBe(500);
    expect((await emulator.handle(request())).status).toBe(500);
    expect((await emulator.handle(request())).status).toBe(200);
    expect(emulator.mode).toMatchObject({ failure: "none", times: null });
    expect(emulator.calls).toBe(3);
  });

  it("goes back to the initial mode on reset", async () => {
    const emulator = create();
    emulator.setMode({ failure: "500", latencyMs: 5, retryAfterSeconds: 3 });
    await emulator.handle(request());
    emulator.reset();
    expect(emulator.mode).toEqual({ latencyMs: 0, failure: "none", retryAfterSeconds: 1, times: null });
    expect(emulator.calls).toBe(0);
    expect(emulator.requests).toEqual([]);
    expect((await emulator.handle(request())).status).toBe(200);
  });

  it("refuses invalid modes", () => {
    const emulator = create();
    expect(() => emulator.setMode({ failure: "teapot" })).toThrow(RangeError);
    expect(() => emulator.setMode({ latencyMs: -5 })).toThrow(RangeError);
  });
});
