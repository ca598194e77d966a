import { ServiceUnavailableError } from '../../errors.js';
import type { WriteFailure } from './write-protocol.js';

/**
 * 503 `storage_unavailable`: the store could not commit the write (a full disk, `SQLITE_FULL`; an
 * I/O error), so the server refuses it instead of answering as if it had been kept. The whole batch
 * it was part of was rolled back: nothing of it is stored. The process keeps running and writes
 * succeed again once the disk has room; clients retry after `Retry-After` (a publish retried with
 * its idempotency key is never stored twice).
 */
export class StorageUnavailableError extends ServiceUnavailableError {
  constructor(readonly failure: WriteFailure) {
    super('storage_unavailable', 'The store cannot write just now; nothing was stored. Try again shortly.', 1);
  }
}
