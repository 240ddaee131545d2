/**
 * SingleFlight — one Durable Object per provider cache key (SHA-256 of the image bytes plus
 * every answer-changing parameter). It only coordinates: however many identical uploads arrive
 * at once, from however many isolates, the first caller becomes the leader and makes the one
 * upstream call itself; the others wait here for the leader's answer. No image bytes pass
 * through the object, so coordination costs two small RPCs.
 *
 * The answer is also kept here for a minute after it is settled, because KV (the cache the
 * leader writes) is eventually consistent across locations and a follower elsewhere may not see
 * the write yet. A leader that never settles (its isolate died) loses its lease after
 * `leaseMs`, and the next caller leads instead. No durable storage is used.
 */
import { DurableObject } from "cloudflare:workers";
import type { ProviderAnswer } from "../src/providers/types";

export type FlightOutcome =
  | { ok: true; answer: ProviderAnswer }
  | { ok: false; error: { kind: string; message: string; status?: number; retryAfterS?: number } };

export type JoinResult = { role: "leader"; token: string } | { role: "follower"; outcome: FlightOutcome };

const RECENT_MS = 60_000;

interface Flight {
  token: string;
  leaseUntil: number;
  settled: Promise<FlightOutcome>;
  settle: (outcome: FlightOutcome) => void;
}

export class SingleFlight extends DurableObject<Env> {
  private flight: Flight | null = null;
  private recent: { answer: ProviderAnswer; until: number } | null = null;

  /** Become the leader, or wait for the current leader's outcome. */
  async join(leaseMs: number): Promise<JoinResult> {
    for (;;) {
      const now = Date.now();
      if (this.recent && this.recent.until > now) return { role: "follower", outcome: { ok: true, answer: this.recent.answer } };
      const flight = this.flight;
      if (!flight || flight.leaseUntil <= now) return { role: "leader", token: this.lead(leaseMs) };
      const outcome = await Promise.race([
        flight.settled,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), Math.max(0, flight.leaseUntil - now))),
      ]);
      if (outcome) return { role: "follower", outcome };
      // The leader's lease ran out (its isolate died): loop, and lead if nobody else has.
    }
  }

  /** The leader reports its outcome; followers waiting on it are released. */
  async settle(token: string, outcome: FlightOutcome): Promise<void> {
    const flight = this.flight;
    if (!flight || flight.token !== token) return;
    this.flight = null;
    // Callers already waiting share the outcome, failure included (so five identical uploads
    // to a dead provider cost one timeout, not five in a row). Only answers are remembered for
    // later callers; after a failure the next caller tries again, behind the circuit breaker.
    if (outcome.ok) this.recent = { answer: outcome.answer, until: Date.now() + RECENT_MS };
    flight.settle(outcome);
  }

  private lead(leaseMs: number): string {
    let settle!: (outcome: FlightOutcome) => void;
    const settled = new Promise<FlightOutcome>((resolve) => (settle = resolve));
    const token = crypto.randomUUID();
    this.flight = { token, leaseUntil: Date.now() + leaseMs, settled, settle };
    return token;
  }
}
