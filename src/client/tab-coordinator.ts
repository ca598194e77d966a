import type { SessionInfo } from './types.js';

/**
 * Lets several clients that share one refresh cookie take turns: a rotating refresh token used
 * twice looks like theft to the server (RFC 9700 §4.14.2), which ends the sign-in for everyone.
 */
export interface RefreshCoordinator {
  /** Runs `fn` while no other cooperating client runs its own. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Tells the others about a new sign-in or token (claims and expiry only, never a token). */
  announce(session: SessionInfo): void;
  onAnnounce(listener: (session: SessionInfo) => void): () => void;
}

/**
 * How long the refreshing tab keeps the lock after announcing: long enough for the announcement
 * (a BroadcastChannel message, delivered in well under a millisecond on one machine) to reach the
 * tabs waiting for the lock before they decide whether to refresh themselves.
 */
const ANNOUNCE_SETTLE_MS = 50;

/**
 * The coordinator for tabs of one origin that each run their own client (browsers without
 * SharedWorker): the Web Locks API for turns, a BroadcastChannel for announcements. Without
 * those APIs it does nothing (each tab on its own, as before).
 */
export function createTabCoordinator(name = 'notify-auth'): RefreshCoordinator {
  const locks = (globalThis.navigator as { locks?: { request<T>(name: string, fn: () => Promise<T>): Promise<T> } } | undefined)?.locks;
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(name) : undefined;
  const listeners = new Set<(session: SessionInfo) => void>();
  channel?.addEventListener('message', (event: MessageEvent) => {
    const session = (event.data as { session?: SessionInfo } | null)?.session;
    if (session !== undefined) for (const listener of listeners) listener(session);
  });
  return {
    exclusive: (fn) =>
      locks === undefined
        ? fn()
        : locks.request(`${name}-refresh`, async () => {
            const result = await fn();
            await new Promise((resolve) => setTimeout(resolve, ANNOUNCE_SETTLE_MS));
            return result;
          }),
    announce: (session) => channel?.postMessage({ session }),
    onAnnounce(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
