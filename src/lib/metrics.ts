/**
 * Metrics to Workers Analytics Engine (API.md §6) when the METRICS dataset is bound: one data
 * point per request (route pattern, method, status, latency) and per provider call (provider,
 * outcome, latency). Route patterns, not URLs, keep the index low-cardinality. Writing a data
 * point is fire-and-forget and never throws into the request.
 */
export type MetricsDataset = AnalyticsEngineDataset | undefined;

export function recordRequestMetric(
  metrics: MetricsDataset,
  point: { route: string; method: string; status: number; durationMs: number; colo?: string },
): void {
  try {
    metrics?.writeDataPoint({
      indexes: [`route:${point.method} ${point.route}`],
      blobs: ["request", point.method, point.route, String(point.status), point.colo ?? ""],
      doubles: [point.durationMs, point.status],
    });
  } catch {
    // Metrics must never break a request.
  }
}

export function recordProviderMetric(
  metrics: MetricsDataset,
  point: { provider: string; outcome: "hit" | "miss" | "shared" | string; durationMs: number },
): void {
  try {
    metrics?.writeDataPoint({
      indexes: [`provider:${point.provider}`],
      blobs: ["provider", point.provider, point.outcome],
      doubles: [point.durationMs, point.outcome === "hit" || point.outcome === "shared" ? 1 : 0],
    });
  } catch {
    // Metrics must never break a request.
  }
}
