/**
 * HitCounter — the provider cache's hit counters, spread over a fixed set of objects
 * (`hit-counter:<n>`, see src/services/cache-hits.ts). Each isolate counts the hits it gathered
 * over a second with one call to one object picked at random, and the staff statistics sum every
 * object, so the counts stay exact while no single object hears every identification. (They were counted in the
 * two ProviderCircuit objects: two calls and two storage writes per hit, on the only objects the
 * whole service shares.)
 */
import { DurableObject } from "cloudflare:workers";

/** Hits per provider name. */
export type HitCounts = Record<string, number>;

export class HitCounter extends DurableObject<Env> {
  private hits: HitCounts = {};

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.hits = (await ctx.storage.get<HitCounts>("hits")) ?? {};
    });
  }

  /** Adds each provider's hits (whole numbers above zero; anything else is ignored). */
  async add(hits: HitCounts): Promise<void> {
    let changed = false;
    for (const [provider, n] of Object.entries(hits)) {
      if (!Number.isSafeInteger(n) || n <= 0) continue;
      this.hits[provider] = (this.hits[provider] ?? 0) + n;
      changed = true;
    }
    if (changed) await this.ctx.storage.put("hits", this.hits);
  }

  async read(): Promise<HitCounts> {
    return { ...this.hits };
  }

  async reset(): Promise<void> {
    this.hits = {};
    await this.ctx.storage.delete("hits");
  }
}
