import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { makePng } from "../helpers/images";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { registerWeb } from "../helpers/users";

const emulators = useEmulators();
const PATH = "/api/v1/plant-identification/identify/";

async function upload(): Promise<FormData> {
  const f = new FormData();
  f.append("image", new File([await makePng(320, 240, { seed: `csrf-${crypto.randomUUID()}` })], "leaf.png", { type: "image/png" }));
  return f;
}

describe("identify/ with cookies (the web app signed in)", () => {
  it("without the CSRF header: 403 CSRF_FAILED in the seed shape, no provider call, nothing saved", async () => {
    const session = await registerWeb();
    const res = await call(PATH, { method: "POST", body: await upload(), cookies: session.cookies });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ success: false, error: expect.stringMatching(/CSRF/), code: "CSRF_FAILED" });
    expect(emulators.plantId.calls + emulators.plantnet.calls).toBe(0);
    const saved = await env.DB.prepare("SELECT count(*) AS n FROM identification_requests WHERE user_id = ?")
      .bind(session.userId)
      .first<{ n: number }>();
    expect(saved?.n).toBe(0);
  });

  it("with a wrong CSRF header: the same refusal", async () => {
    const session = await registerWeb();
    const res = await call(PATH, {
      method: "POST",
      body: await upload(),
      cookies: session.cookies,
      headers: { "X-CSRFToken": "not-the-token" },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ success: false, code: "CSRF_FAILED" });
  });

  it("with the matching header: identified and saved for the signed-in user", async () => {
    const session = await registerWeb();
    const res = await call(PATH, {
      method: "POST",
      body: await upload(),
      cookies: session.cookies,
      headers: { "X-CSRFToken": session.csrf },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { success: boolean; request_id?: string };
    expect(body.success).toBe(true);
    const row = await env.DB.prepare("SELECT user_id FROM identification_requests WHERE id = ?")
      .bind(body.request_id ?? "")
      .first<{ user_id: string }>();
    expect(row?.user_id).toBe(session.userId);
  });

  it("other cookie-authenticated writes keep the error envelope", async () => {
    const session = await registerWeb();
    const res = await call("/api/v1/auth/logout/", { method: "POST", cookies: session.cookies });
    await expectError(res, 403, "CSRF_FAILED");
  });
});
