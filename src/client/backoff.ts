/**
 * Reconnect delays with "full jitter" (AWS architecture blog, "Exponential Backoff And Jitter"):
 * a random delay between 0 and min(max, initial * 2^attempt), so clients dropped together by a
 * restart do not come back together.
 */
export interface BackoffOptions {
  /** First ceiling, ms. Default 500. */
  readonly initialMs?: number;
  /** Largest ceiling, ms. Default 30 000. */
  readonly maxMs?: number;
}

/** The delay before attempt `attempt` (0-based), ms. @internal */
export function backoffDelay(attempt: number, random: () => number, options: BackoffOptions = {}): number {
  const initial = options.initialMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
