/**
 * SingleFlight — one Durable Object per provider cache key (SHA-256 of the image bytes plus
 * every answer-changing parameter). However many identical uploads arrive at once, from however
 * many isolates, they all land here and exactly one upstream call is made; the others wait for
 * its answer. The answer is written to KV (the cache) and also kept here for a minute, because
 * KV is eventually consistent across locations and a follower may not see the write yet.
 *
 * The object holds no durable storage: it exists only while calls are in flight.
 */
import { DurableObject } from "cloudflare:workers";
import { callProviderUpstream, type ProviderJob } from "../src/services/provider-calls";
import type { ProviderAnswer } from "../src/providers/types";
import { ProviderError } from "../src/providers/types";

export type FlightResult =
  | { ok: true; answer: ProviderAnswer; upstream: boolean }
  | { ok: false; error: ReturnType<ProviderError["toJSON"]>; upstream: boolean };

const RECENT_MS = 60_000;

export class SingleFlight extends DurableObject<Env> {
  private inflight: Promise<FlightResult> | null = null;
  private recent: { answer: ProviderAnswer; until: number } | null = null;

  async run(job: ProviderJob): Promise<FlightResult> {
    if (this.recent && this.recent.until > Date.now()) return { ok: true, answer: this.recent.answer, upstream: false };
    if (this.inflight) {
      const shared = await this.inflight;
      return { ...shared, upstream: false };
    }
    this.inflight = this.lead(job);
    try {
      return await this.inflight;
    } finally {
      this.inflight = null;
    }
  }

  private async lead(job: ProviderJob): Promise<FlightResult> {
    const cached = await this.env.CACHE.get<ProviderAnswer>(job.cacheKey, "json");
    if (cached) return { ok: true, answer: cached, upstream: false };
    try {
      const answer = await callProviderUpstream(this.env, job);
      this.recent = { answer, until: Date.now() + RECENT_MS };
      await this.env.CACHE.put(job.cacheKey, JSON.stringify(answer), { expirationTtl: job.ttlS });
      return { ok: true, answer, upstream: true };
    } catch (err) {
      const error = err instanceof ProviderError ? err : new ProviderError(job.provider, "server", err instanceof Error ? err.message : String(err));
      return { ok: false, error: error.toJSON(), upstream: error.kind !== "circuit_open" };
    }
  }
}
