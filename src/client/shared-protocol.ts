import type { SerializedError } from './errors.js';
import type { AuthState, ConnectedInfo, NotifyEvent, ResetInfo, StreamState, SubscribeOptions } from './types.js';

/**
 * Messages between tabs and the SharedWorker that holds the origin's one client (and so one
 * stream per set of topics, whatever the number of tabs).
 * @internal
 */
export type CallMethod = 'login' | 'logout' | 'restore' | 'refresh' | 'publish';

/** @internal */
export type TabMessage =
  | { readonly op: 'call'; readonly id: number; readonly method: CallMethod; readonly args: unknown[] }
  | { readonly op: 'subscribe'; readonly id: number; readonly topics: readonly string[]; readonly options: SubscribeOptions }
  | { readonly op: 'unsubscribe'; readonly id: number }
  /** The tab is going away (pagehide): a MessagePort gives no signal of its own when it closes. */
  | { readonly op: 'bye' };

/** @internal */
export type WorkerMessage =
  | { readonly op: 'result'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly op: 'result'; readonly id: number; readonly ok: false; readonly error: SerializedError }
  | { readonly op: 'auth'; readonly state: AuthState }
  | { readonly op: 'event'; readonly id: number; readonly event: NotifyEvent }
  | { readonly op: 'reset'; readonly id: number; readonly info: ResetInfo }
  | { readonly op: 'state'; readonly id: number; readonly state: StreamState; readonly lastEventId: string | undefined }
  | { readonly op: 'connected'; readonly id: number; readonly info: ConnectedInfo }
  | { readonly op: 'renewed'; readonly id: number; readonly expiresAt: string }
  | { readonly op: 'stop'; readonly id: number; readonly error: SerializedError };
