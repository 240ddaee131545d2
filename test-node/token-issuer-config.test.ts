/**
 * Each deployed environment signs tokens as its own issuer for its own audience (wrangler.toml,
 * read the way wrangler reads it). Tokens are HS256 under a per-environment secret; distinct
 * `iss`/`aud` are the second lock, so a staging token is refused by production (and the reverse)
 * even if the two ever end up with the same `JWT_SECRET`.
 */
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";

const DEPLOYED = ["staging", "production"] as const;

function tokenClaims(env: (typeof DEPLOYED)[number]) {
  const config = unstable_readConfig({ config: "wrangler.toml", env }, { hideWarnings: true } as never);
  const vars = config.vars as Record<string, unknown>;
  const issuer = vars.JWT_ISSUER;
  const audience = vars.JWT_AUDIENCE;
  if (typeof issuer !== "string" || issuer === "") throw new Error(`${env}: no JWT_ISSUER in wrangler.toml`);
  if (typeof audience !== "string" || audience === "") throw new Error(`${env}: no JWT_AUDIENCE in wrangler.toml`);
  return { env, issuer, audience };
}

describe("token issuer and audience per environment", () => {
  it("no two deployed environments share an issuer or an audience", () => {
    const claims = DEPLOYED.map(tokenClaims);
    expect(new Set(claims.map((c) => c.issuer)).size).toBe(claims.length);
    expect(new Set(claims.map((c) => c.audience)).size).toBe(claims.length);
  });

  it("staging names itself in its issuer and audience", () => {
    const staging = tokenClaims("staging");
    expect(staging.issuer).toContain("staging");
    expect(staging.audience).toContain("staging");
    const production = tokenClaims("production");
    expect(production.issuer).not.toContain("staging");
    expect(production.audience).not.toContain("staging");
  });
});
