/**
 * The deployed queue consumers' batch settings (wrangler.toml, read the way wrangler reads it).
 * An invocation may have only 6 connections waiting for response headers; a seventh waits until
 * one has its headers (https://developers.cloudflare.com/workers/platform/limits/), and
 * `wrangler dev` does not enforce it, so no local run would show a batch too large for it.
 */
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";

const CONNECTIONS_PER_INVOCATION = 6;
/** An identification job asks Plant.id and Pl@ntNet at once (src/services/identification.ts). */
const PROVIDER_CALLS_PER_JOB = 2;

function identifyConsumer(env: "staging" | "production") {
  const config = unstable_readConfig({ config: "wrangler.toml", env }, { hideWarnings: true } as never);
  const consumers: {
    queue: string;
    max_batch_size?: number | null;
    max_batch_timeout?: number | null;
    dead_letter_queue?: string | null;
  }[] = config.queues.consumers ?? [];
  const consumer = consumers.find((c) => c.queue === `plant-identify-${env}`);
  if (!consumer) throw new Error(`no plant-identify-${env} consumer in wrangler.toml`);
  return consumer;
}

describe("deployed identification consumers", () => {
  for (const env of ["staging", "production"] as const) {
    it(`${env}: a batch's provider calls all fit in one invocation's connections, and a lone job starts at once`, () => {
      const consumer = identifyConsumer(env);
      expect((consumer.max_batch_size ?? 10) * PROVIDER_CALLS_PER_JOB).toBeLessThanOrEqual(CONNECTIONS_PER_INVOCATION);
      expect(consumer.max_batch_timeout).toBe(0);
      expect(consumer.dead_letter_queue).toBe(`plant-identify-${env}-dlq`);
    });
  }
});
