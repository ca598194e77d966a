// Child for corrupt.mjs: opens a (damaged) store, reads every event of its 4 topics, then tries
// one durable publish. Prints one JSON line: what opening, reading and writing did (for SQLite also
// what `PRAGMA quick_check` says before the store opens it).
// Usage: node corrupt-open.mjs KIND MODE DIR
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { openStore } from './stores.mjs';

const [kind, mode, dir] = process.argv.slice(2);
const describe = (error) => ({ name: error.name, code: error.code, message: String(error.message).split('\n')[0].slice(0, 160) });
const out = { open: 'ok' };
if (kind === 'sqlite') {
  // What a start-up check would see: SQLite's own structural check of every page.
  try {
    const Database = createRequire(join(process.env.DBCHOICE_MODULES, 'package.json'))('better-sqlite3');
    const db = new Database(join(dir, 'events.db'), { fileMustExist: true });
    const rows = db.pragma('quick_check').map((r) => r.quick_check);
    out.quickCheck = rows[0] === 'ok' ? 'ok' : { code: 'QUICK_CHECK_FAILED', message: `${rows.length} problem(s): ${rows[0]}` };
    db.close();
  } catch (error) {
    out.quickCheck = describe(error);
  }
}
let store;
try {
  store = await openStore(kind, mode, dir);
} catch (error) {
  out.open = describe(error);
  console.log(JSON.stringify(out));
  process.exit(0);
}
try {
  let count = 0;
  for (let t = 0; t < 4; t++) count += (await store.replay(`t-${t}`, 0, 1e9)).length;
  out.read = { events: count };
} catch (error) {
  out.read = describe(error);
}
try {
  await store.publish('t-0', Date.now() * 1000 + 999, Buffer.alloc(200, 'w'), `after-${Date.now()}`);
  out.write = 'ok';
} catch (error) {
  out.write = describe(error);
}
try {
  await store.close();
} catch (error) {
  out.close = describe(error);
}
console.log(JSON.stringify(out));
