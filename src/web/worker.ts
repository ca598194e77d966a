import { hostSharedWorker } from '../client/shared-worker-host.js';

/** The SharedWorker script (`/app/notify-worker.js`): one client, one stream, for every tab of the origin. */
hostSharedWorker(globalThis as unknown as { onconnect: ((event: MessageEvent) => void) | null });
