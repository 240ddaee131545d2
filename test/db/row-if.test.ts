/**
 * rowIf: the one-row source of an INSERT … SELECT that lands only while a condition holds, with
 * the schema's defaults for the columns not given and the columns' modes for the values given.
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database, rowIf } from "../../src/db/client";
import { oauthAccounts } from "../../src/db/schema";
import { registerWeb } from "../helpers/users";

describe("rowIf", () => {
  it("inserts the row with the schema's defaults and the columns' modes while the condition holds", async () => {
    const user = await registerWeb();
    const db = database(env);
    const providerUserId = `gh-${crypto.randomUUID()}`;
    const inserted = await db
      .insert(oauthAccounts)
      .select(
        rowIf(
          oauthAccounts,
          { id: crypto.randomUUID(), userId: user.userId, provider: "github", providerUserId, emailVerified: false },
          sql`1`,
        ),
      )
      .returning()
      .get();
    // email and created_at from their defaults, the boolean stored as 0 and read back as false.
    expect(inserted).toMatchObject({ userId: user.userId, provider: "github", providerUserId, email: "", emailVerified: false });
    expect(inserted?.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const raw = await env.DB.prepare("SELECT email_verified FROM oauth_accounts WHERE provider_user_id = ?").bind(providerUserId).first();
    expect(raw).toEqual({ email_verified: 0 });
  });

  it("inserts nothing when the condition does not hold", async () => {
    const user = await registerWeb();
    const providerUserId = `gh-${crypto.randomUUID()}`;
    const inserted = await database(env)
      .insert(oauthAccounts)
      .select(rowIf(oauthAccounts, { id: crypto.randomUUID(), userId: user.userId, provider: "github", providerUserId }, sql`0`))
      .returning()
      .get();
    expect(inserted).toBeUndefined();
    const count = await env.DB.prepare("SELECT count(*) AS n FROM oauth_accounts WHERE provider_user_id = ?").bind(providerUserId).first();
    expect(count).toEqual({ n: 0 });
  });
});
