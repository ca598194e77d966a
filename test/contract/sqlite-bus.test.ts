import { openSqliteBackend } from '../../src/backends/sqlite/sqlite-backend.js';
import { backendDeps } from '../helpers/backend-deps.js';
import { sqliteSettings, storeDir } from '../helpers/sqlite.js';
import { eventBusContract } from './event-bus.contract.js';

// The same contract as the memory and Redis buses, unchanged, on a store file in a fresh directory.
eventBusContract('sqlite', async ({ clock, historySize }) => {
  const { dir, remove } = storeDir('bus-contract');
  const backend = await openSqliteBackend(sqliteSettings(dir, { HISTORY_SIZE: String(historySize) }), backendDeps({ clock }));
  return {
    bus: backend.bus,
    sweep: () => backend.bus.sweep(),
    close: async () => {
      await backend.close();
      remove();
    },
  };
});
