// Run from a package folder (time-ci.sh does): opens whichever candidate is installed there, writes, reads back.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const dir = mkdtempSync(join(tmpdir(), 'smoke-'));
const out = [];
if (existsSync('node_modules/lmdb')) {
  const { open } = await import(join(process.cwd(), 'node_modules/lmdb/index.js'));
  const db = open({ path: join(dir, 'l') });
  db.putSync('k', 'v');
  out.push('lmdb=' + db.get('k'));
}
if (existsSync('node_modules/classic-level')) {
  const { ClassicLevel } = await import(join(process.cwd(), 'node_modules/classic-level/index.js'));
  const db = new ClassicLevel(join(dir, 'c'));
  await db.put('k', 'v', { sync: true });
  out.push('classic-level=' + (await db.get('k')));
}
if (existsSync('node_modules/better-sqlite3')) {
  const { createRequire } = await import('node:module');
  const D = createRequire(join(process.cwd(), 'x.js'))('better-sqlite3');
  const db = new D(join(dir, 's.db'));
  out.push('better-sqlite3=' + db.prepare('select sqlite_version() v').get().v);
}
console.log(out.join(',') || 'none');
