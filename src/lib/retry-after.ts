/**
 * `Retry-After` (RFC 9110 §10.2.3) as seconds from now: delay-seconds or an HTTP-date, in any of
 * the three forms a recipient must read (§5.6.7: IMF-fixdate, RFC 850, asctime). Anything else is
 * unreadable and answers undefined, as an absent header does — so the caller's own backoff
 * applies. `Date.parse` alone would read "-5" or "1.5" as dates in 2001 (V8's lenient parser),
 * and a provider's garbled header would become "retry at once". A date in the past is 0; a
 * number too large to mean anything is held at MAX_RETRY_AFTER_S, so it stays a finite number
 * in logs and message bodies (callers cap their waits far below it anyway).
 */
export const MAX_RETRY_AFTER_S = 2 ** 31 - 1;

const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAY = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const TIME = "\\d{2}:\\d{2}:\\d{2}";
const IMF_FIXDATE = new RegExp(`^${DAY}, \\d{2} ${MONTH} \\d{4} ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${LONG_DAY}, \\d{2}-${MONTH}-\\d{2} ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} [ \\d]\\d ${TIME} \\d{4}$`);

export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text), MAX_RETRY_AFTER_S);
  // asctime carries no zone: it is GMT (RFC 9110 §5.6.7), whatever the parser's local zone is.
  const date =
    IMF_FIXDATE.test(text) || RFC850_DATE.test(text) ? Date.parse(text) : ASCTIME_DATE.test(text) ? Date.parse(`${text} GMT`) : NaN;
  return Number.isNaN(date) ? undefined : Math.min(MAX_RETRY_AFTER_S, Math.max(0, Math.ceil((date - now) / 1000)));
}
