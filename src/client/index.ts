/**
 * The notify client (`notify-server/client`): browsers (native EventSource, cookie mode) and Node
 * (inject the `eventsource` package's EventSource; bearer tokens or client credentials).
 */
export { NotifyClient, type NotifyClientOptions } from './notify-client.js';
export { SharedNotifyClient } from './shared-client.js';
export { hostSharedWorker } from './shared-worker-host.js';
export { createBrowserClient, DEFAULT_WORKER_URL } from './browser.js';
export { NotifyClientError, SignedOutError, StreamStoppedError, NetworkError } from './errors.js';
export { compareEventIds } from './event-id.js';
export { createTabCoordinator, type RefreshCoordinator } from './tab-coordinator.js';
export type {
  AuthState,
  ConnectedInfo,
  EventSourceConstructor,
  EventSourceLike,
  NotifyClientApi,
  NotifyEvent,
  PublishOptions,
  PublishResult,
  ResetInfo,
  SessionInfo,
  StreamState,
  SubscribeHandlers,
  SubscribeOptions,
  Subscription,
} from './types.js';
