/**
 * Waits as people say them, for messages ("Please try again in 59 minutes."). Always rounded
 * up, so whoever follows the message never comes back too early; the exact figure stays in the
 * `Retry-After` header (seconds) for programs.
 */
export function humanDuration(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return plural(s, "second");
  const minutes = Math.ceil(s / 60);
  if (minutes < 120) return plural(minutes, "minute");
  return plural(Math.ceil(s / 3600), "hour");
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

/** An hour and a day in milliseconds, for the windows, retentions and offsets the services keep. */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
