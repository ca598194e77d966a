import { NotifyClient } from './notify-client.js';
import { SharedNotifyClient } from './shared-client.js';
import { createTabCoordinator } from './tab-coordinator.js';
import type { NotifyClientApi } from './types.js';

/** Where the server serves the SharedWorker script (see `src/http/routes/web.ts`). */
export const DEFAULT_WORKER_URL = '/app/notify-worker.js';

/**
 * The client for a page: shared by every tab of the origin through a SharedWorker when the
 * browser has one (one sign-in, one refresh, one server connection), otherwise a client of its
 * own in cookie mode.
 */
export function createBrowserClient(options: { workerUrl?: string; shared?: boolean; baseUrl?: string } = {}): NotifyClientApi {
  if (options.shared !== false && typeof SharedWorker === 'function') {
    return new SharedNotifyClient(options.workerUrl ?? DEFAULT_WORKER_URL);
  }
  // No SharedWorker (e.g. Chrome on Android): a client per tab, taking turns to refresh the shared cookie.
  return new NotifyClient({ mode: 'cookie', baseUrl: options.baseUrl ?? '', coordinator: createTabCoordinator() });
}
