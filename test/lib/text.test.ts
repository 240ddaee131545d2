import { describe, expect, it } from "vitest";
import { cutText, textKey } from "../../src/lib/text";
import { pushPayload } from "../../src/services/notification-delivery";

const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

describe("user text in any script", () => {
  it("keys names the same whatever the case, form or script", () => {
    expect(textKey("KÜCHE")).toBe(textKey("Küche"));
    expect(textKey("Ku\u0308che")).toBe(textKey("Küche"));
    expect(textKey("ΚΉΠΟΣ")).toBe(textKey("κήπος"));
    expect(textKey("STRASSE")).toBe(textKey("Straße"));
    expect(textKey("ＨＥＲＢＳ")).toBe(textKey("herbs"));
    expect(textKey("Сад")).not.toBe(textKey("Cad"));
  });

  it("keys Greek final ς and σ as one letter, wherever a word ends", () => {
    for (const [a, b] of [
      ["κήποσ", "κήπος"],
      ["ΚΉΠΟΣ", "κήποσ"],
      ["κήποσ μου", "ΚΉΠΟΣ ΜΟΥ"],
      ["κήποσ2", "κήπος2"],
      ["ΣΟΦΌς", "σοφόσ"],
    ]) {
      expect(textKey(a!), `${a} / ${b}`).toBe(textKey(b!));
    }
    expect(textKey("κήπος")).not.toBe(textKey("κήπο"));
  });

  it("cuts to at most max UTF-16 units without splitting a character", () => {
    expect(cutText(`${"a".repeat(9)}🌱`, 10)).toBe("a".repeat(9));
    expect(cutText(`${"a".repeat(8)}🌱`, 10)).toBe(`${"a".repeat(8)}🌱`);
    expect(cutText("植物の名前", 3)).toBe("植物の");
    expect(cutText("short", 10)).toBe("short");
  });

  it("a push payload's cut title and body stay well-formed text", () => {
    const n = {
      id: crypto.randomUUID(),
      userId: crypto.randomUUID(),
      type: "forum_reply",
      title: `${"t".repeat(199)}🌿 title`,
      body: `${"b".repeat(999)}🌿 body`,
      data: {},
      createdAt: new Date().toISOString(),
    } as unknown as Parameters<typeof pushPayload>[0];
    const sent = JSON.parse(pushPayload(n, "https://app.example")) as { title: string; body: string };
    expect(wellFormed(sent.title) && wellFormed(sent.body)).toBe(true);
    expect(sent.title).toBe("t".repeat(199));
    expect(sent.body).toBe("b".repeat(999));
  });
});
