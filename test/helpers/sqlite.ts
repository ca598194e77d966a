import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SqliteBackendSettings } from '../../src/backends/sqlite/sqlite-backend.js';
import { loadConfig } from '../../src/config.js';

/** A fresh directory for one store; `remove` deletes it and everything in it. */
export function storeDir(label = 'store'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `notify-${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The SQLite backend's settings from the environment, as the server reads them, with the store in `dir`. */
export function sqliteSettings(dir: string, env: Record<string, string> = {}): SqliteBackendSettings {
  const config = loadConfig({ DATA_DIR: dir, ...env });
  if (config.backend.kind !== 'sqlite') throw new Error('expected the SQLite backend');
  return { ...config, store: config.backend };
}
