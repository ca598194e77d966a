import { RevocationList } from '../../src/auth/revocations.js';
import type { BackendDeps } from '../../src/backends/backend.js';

/** What a backend is given by the server, for a backend opened on its own in a test; every part overridable. */
export function backendDeps(overrides: Partial<BackendDeps> = {}): BackendDeps {
  return {
    clock: Date.now,
    instance: 'test-instance',
    revocations: new RevocationList({ retentionMs: 60_000 }),
    localStreams: { renewIfHeld: () => undefined },
    onDispatch: () => undefined,
    onError: () => undefined,
    ...overrides,
  };
}
