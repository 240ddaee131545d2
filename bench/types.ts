import type { BenchStack } from "./stack";

export type Verdict = "PASS" | "MISS" | "info";

export interface Row {
  metric: string;
  value: string;
  target: string;
  verdict: Verdict;
}

export interface BenchResult {
  name: string;
  title: string;
  rows: Row[];
  /** Correctness failures (lost or duplicated work, missing messages, wrong answers): exit code 1. */
  failures: string[];
  notes: string[];
  data: Record<string, unknown>;
  durationMs: number;
}

export interface BenchContext {
  stack: BenchStack;
  log(msg: string): void;
}

export type Benchmark = (ctx: BenchContext, result: BenchResult) => Promise<void>;

export function row(metric: string, value: string, target = "", verdict: Verdict = "info"): Row {
  return { metric, value, target, verdict };
}

export const verdict = (ok: boolean): Verdict => (ok ? "PASS" : "MISS");
