/**
 * The timers the dispatcher uses for linger, retries and request timeouts, injected so that all
 * of its timing is tested with a fake clock instead of sleeps.
 */
export interface WebhookTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node's timers, unref'd: a pending retry never keeps a process alive that is otherwise done (shutdown calls `close`). */
export const systemTimers: WebhookTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
