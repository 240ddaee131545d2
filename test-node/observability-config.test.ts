/**
 * Workers Logs in every environment (wrangler.toml, read the way wrangler reads it) keeps the
 * Worker's own log lines, which are redacted at the source, and not the platform's invocation
 * record: that one holds each request's full URL (an unsubscribe link's `?token=`, a calendar
 * feed's token in the path) and its headers (Authorization, Cookie). docs/architecture.md.
 */
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";

describe("Workers Logs per environment", () => {
  for (const env of [undefined, "staging", "production"] as const) {
    it(`${env ?? "local"}: the Worker's own lines are kept, the platform's invocation record with URLs and headers is not`, () => {
      const config = unstable_readConfig({ config: "wrangler.toml", env }, { hideWarnings: true } as never);
      expect(config.observability?.enabled).toBe(true);
      expect(config.observability?.logs?.enabled).not.toBe(false);
      expect(config.observability?.logs?.invocation_logs).toBe(false);
    });
  }
});
