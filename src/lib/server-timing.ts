/**
 * Per-stage timings of one request as a `Server-Timing` header (W3C Server Timing), so clients,
 * browsers' developer tools and `bench/` see where a request's time went without logs; queue
 * jobs log theirs (`stagesMs`).
 *
 * Workers' clocks advance only across I/O (a Spectre mitigation): a stage that only computes
 * reads 0 ms, and its cost shows in the stage whose I/O follows it. Stages that overlap each
 * report their own duration.
 */
/** Hears how long one named stage took; services take one so routes can report their stages. */
export type StageRecorder = (name: string, ms: number) => void;

export class StageTimer {
  private readonly started = Date.now();
  private readonly stages: [string, number][] = [];

  /** Awaits `work`, recording how long it took under `name` (a token: letters, digits, `_`, `-`). */
  async time<T>(name: string, work: Promise<T> | (() => Promise<T>)): Promise<T> {
    const at = Date.now();
    try {
      return await (typeof work === "function" ? work() : work);
    } finally {
      this.stages.push([name, Date.now() - at]);
    }
  }

  /** Records a stage measured elsewhere (shared by several jobs, or by a service through `StageRecorder`). */
  record(name: string, ms: number): void {
    this.stages.push([name, ms]);
  }

  /** Each stage, then `total` since the timer was made, in milliseconds (for a log line). */
  stagesMs(): Record<string, number> {
    return Object.fromEntries([...this.stages, ["total", Date.now() - this.started]]);
  }

  /** The header's value: each stage, then `total` since the timer was made. */
  header(): string {
    return [...this.stages, ["total", Date.now() - this.started] as [string, number]].map(([name, ms]) => `${name};dur=${ms}`).join(", ");
  }
}
