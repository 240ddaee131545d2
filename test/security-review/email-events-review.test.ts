// Security review: the email provider's webhook, attacked where the route tests do not: the
// signed delivery with its JSON re-serialised (the same event in other bytes). The signature must
// cover the raw body, not what parsing makes of it, or a body rewritten in transit would pass.
// It held; this test keeps it held.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { isSuppressed } from "../../src/services/email-events";
import { postEmailEvent as post, sentMail, WEBHOOK_SECRET as SECRET } from "../helpers/email-webhook";
import { expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";

const emulators = useEmulators();

describe("the email webhook", () => {
  it("the signature covers the raw body: the same event re-serialised is refused, nothing suppressed", async () => {
    const to = `raw-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const good = await emulators.email.webhook(await sentMail(to), "email.complained", SECRET);
    for (const body of [JSON.stringify(JSON.parse(good.body), null, 2), `${good.body}\n`, ` ${good.body}`]) {
      expect(JSON.parse(body)).toEqual(JSON.parse(good.body));
      await expectError(await post({ headers: good.headers, body }), 401, "INVALID_SIGNATURE");
    }
    expect(await isSuppressed(env, to)).toBe(false);
    // Control: the bytes as signed are taken.
    expect((await post(good)).status).toBe(200);
    expect(await isSuppressed(env, to)).toBe(true);
  });
});
