// What a start-up integrity check costs on SQLite: fills a database with EVENTS events of 200 bytes
// over 1,000 topics, closes it, then times `PRAGMA quick_check` and `PRAGMA integrity_check` on a
// fresh connection (page cache cold for SQLite, warm for the OS).
// Usage: node sqlite-check-cost.mjs DIR [EVENTS]
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { diskUsage, openStore } from './stores.mjs';

const [dir, eventsArg] = process.argv.slice(2);
const EVENTS = Number(eventsArg ?? 200_000);
rmSync(dir, { recursive: true, force: true });
const store = await openStore('sqlite', 'normal-batched', dir);
const payload = Buffer.alloc(200, 'q');
const base = Date.now() * 1000;
for (let n = 0; n < EVENTS; n += 1000)
  await Promise.all(Array.from({ length: 1000 }, (_, k) => store.publish(`topic-${(n + k) % 1000}`, base + n + k, payload)));
await store.close();
const Database = createRequire(join(process.env.DBCHOICE_MODULES, 'package.json'))('better-sqlite3');
const timed = (pragma) => {
  const db = new Database(join(dir, 'events.db'), { fileMustExist: true });
  const t0 = process.hrtime.bigint();
  const result = db.pragma(pragma, { simple: true });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  db.close();
  return { result, ms };
};
const quick = timed('quick_check');
const full = timed('integrity_check');
console.log(
  JSON.stringify({
    step: 'sqlite-check',
    events: EVENTS,
    bytes: diskUsage(dir).apparent,
    quickCheckMs: quick.ms,
    quickCheck: quick.result,
    integrityCheckMs: full.ms,
    integrityCheck: full.result,
    load1: loadavg()[0],
  }),
);
rmSync(dir, { recursive: true, force: true });
