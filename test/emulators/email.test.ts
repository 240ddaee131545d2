import { describe, expect, it } from "vitest";

import { createEmailEmulator, type EmailEmulator } from "../../emulators/email";

const BASE = "https://email.emulator.test";
const AUTH = { authorization: "Bearer emulator-key" };

function send(emulator: EmailEmulator, body: unknown, headers: Record<string, string> = AUTH) {
  return emulator.handle(
    new Request(`${BASE}/emails`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    }),
  );
}

const RESET_MAIL = {
  from: "Plant Community <no-reply@plantcommunity.local>",
  to: "ada@example.com",
  subject: "Reset your password",
  html: '<p><a href="http://localhost:5173/reset?token=abc">Reset</a></p>',
  text: "Reset: http://localhost:5173/reset?token=abc",
  reply_to: "support@plantcommunity.local",
  headers: { "X-Entity-Ref-ID": "reset-1" },
};

describe("email emulator", () => {
  // RFC 8058 §3.1: "The List-Unsubscribe header field MUST contain one HTTPS URI … The
  // List-Unsubscribe-Post header MUST contain the single key/value pair List-Unsubscribe=One-Click."
  it("plays the receiving mailbox for one-click unsubscribe: refuses headers that break RFC 8058 or RFC 2369", async () => {
    const https = "<https://api.example/u?t=1>";
    const mailto = "<mailto:unsubscribe@plants.example?subject=unsubscribe%201>";
    const oneClick = "List-Unsubscribe=One-Click";
    for (const headers of [
      { "List-Unsubscribe-Post": oneClick },
      { "List-Unsubscribe": "<http://api.example/u?t=1>", "List-Unsubscribe-Post": oneClick },
      { "List-Unsubscribe": `${https}, <http://api.example/u?t=2>`, "List-Unsubscribe-Post": oneClick },
      { "List-Unsubscribe": `${https}, <https://api.example/u?t=2>`, "List-Unsubscribe-Post": oneClick },
      { "List-Unsubscribe": "https://api.example/u?t=1", "List-Unsubscribe-Post": oneClick },
      { "List-Unsubscribe": https, "List-Unsubscribe-Post": "One-Click" },
      { "List-Unsubscribe": `${https} ${mailto}` },
    ]) {
      const emulator = createEmailEmulator();
      const response = await send(emulator, { ...RESET_MAIL, headers });
      expect(response.status, JSON.stringify(headers)).toBe(422);
      expect(((await response.json()) as { name: string }).name).toBe("validation_error");
      expect(emulator.outbox).toHaveLength(0);
    }
    for (const headers of [
      { "List-Unsubscribe": `${https}, ${mailto}`, "List-Unsubscribe-Post": oneClick },
      { "list-unsubscribe": `  ${mailto} ,${https}`, "list-unsubscribe-post": oneClick },
      { "List-Unsubscribe": `<http://127.0.0.1:8787/u?t=1>, ${mailto}` },
    ]) {
      expect((await send(createEmailEmulator(), { ...RESET_MAIL, headers })).status, JSON.stringify(headers)).toBe(200);
    }
  });

  it("accepts a message with 200 {id} and keeps it in the outbox", async () => {
    const emulator = createEmailEmulator();
    const response = await send(emulator, RESET_MAIL);
    expect(response.status).toBe(200);
    const { id } = (await response.json()) as { id: string };
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    expect(emulator.outbox).toHaveLength(1);
    expect(emulator.outbox[0]).toMatchObject({
      id,
      from: RESET_MAIL.from,
      to: ["ada@example.com"],
      subject: RESET_MAIL.subject,
      html: RESET_MAIL.html,
      text: RESET_MAIL.text,
      reply_to: ["support@plantcommunity.local"],
      headers: { "X-Entity-Ref-ID": "reset-1" },
      created_at: expect.any(String),
    });
  });

  it("lists and fetches sent mail over HTTP, filtered by recipient", async () => {
    const emulator = createEmailEmulator();
    await send(emulator, RESET_MAIL);
    await send(emulator, { ...RESET_MAIL, to: ["Bob <bob@example.com>", "carol@example.com"], subject: "Welcome" });

    const all = (await (await emulator.handle(new Request(`${BASE}/emails`, { headers: AUTH }))).json()) as any;
    expect(all.data.map((mail: any) => mail.subject)).toEqual(["Reset your password", "Welcome"]);
    const forBob = (await (await emulator.handle(new Request(`${BASE}/emails?to=bob@example.com`, { headers: AUTH }))).json()) as any;
    expect(forBob.data.map((mail: any) => mail.subject)).toEqual(["Welcome"]);

    const one = await emulator.handle(new Request(`${BASE}/emails/${all.data[0].id}`, { headers: AUTH }));
    expect(await one.json()).toMatchObject({ id: all.data[0].id, subject: "Reset your password" });
    const missing = await emulator.handle(new Request(`${BASE}/emails/00000000-0000-4000-8000-000000000000`, { headers: AUTH }));
    expect(missing.status).toBe(404);
  });

  it("answers 401 missing_api_key / invalid_api_key", async () => {
    const emulator = createEmailEmulator();
    const missing = await send(emulator, RESET_MAIL, {});
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ statusCode: 401, name: "missing_api_key", message: expect.any(String) });
    const wrong = await send(emulator, RESET_MAIL, { authorization: "Bearer re_nope" });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ statusCode: 401, name: "invalid_api_key" });
    expect(emulator.outbox).toHaveLength(0);
  });

  it.each([
    ["from", { ...RESET_MAIL, from: undefined }],
    ["to", { ...RESET_MAIL, to: [] }],
    ["subject", { ...RESET_MAIL, subject: "" }],
    ["html or text", { ...RESET_MAIL, html: undefined, text: undefined }],
    ["a malformed address", { ...RESET_MAIL, to: "not-an-address" }],
  ])("answers 422 validation_error for missing or bad %s", async (_case, body) => {
    const emulator = createEmailEmulator();
    const response = await send(emulator, body);
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ statusCode: 422, name: "validation_error", message: expect.any(String) });
    expect(emulator.outbox).toHaveLength(0);
  });

  it("empties the outbox on reset", async () => {
    const emulator = createEmailEmulator();
    await send(emulator, RESET_MAIL);
    emulator.reset();
    expect(emulator.outbox).toHaveLength(0);
    expect(emulator.calls).toBe(0);
  });
});
