/**
 * When to try a failed delivery again: exponential back-off with jitter, so that receivers that
 * failed together (a deploy, an outage) are not hit again together ("equal jitter": half the
 * delay is fixed, half random, so a retry never comes almost at once).
 * @param failedAttempts attempts made so far (1 after the first failure).
 * @param random uniform in [0, 1).
 */
export function backoffMs(failedAttempts: number, initialMs: number, maxMs: number, random: () => number): number {
  const exponential = Math.min(maxMs, initialMs * 2 ** Math.min(failedAttempts - 1, 40));
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) as milliseconds from `nowMs`: delay-seconds or an HTTP-date.
 * `undefined` when absent or unreadable; a date in the past is 0.
 */
export function retryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  // IMF-fixdate and the obsolete RFC 850 form end in GMT (asctime is not read); Date.parse alone would read '-5' as a year.
  const date = /GMT$/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}
