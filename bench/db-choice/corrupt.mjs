// Opening a damaged file: a store with 2,000 events is written and closed (LevelDB: compacted into
// a table file, then 200 more events left in its log), copied, and each copy damaged one way:
// truncated to half, 4 KiB of random bytes written in the middle or at the start, emptied.
// A child (corrupt-open.mjs) then opens it, reads and writes; a crash shows as its signal.
// Usage: node corrupt.mjs KIND
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, truncateSync, writeSync, closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from './stores.mjs';

const [kind] = process.argv.slice(2);
const mode = { lmdb: 'synccommit', level: 'sync', sqlite: 'full' }[kind];
const childScript = fileURLToPath(new URL('./corrupt-open.mjs', import.meta.url));
const pristine = mkdtempSync(join(tmpdir(), `corrupt-${kind}-`));
const store = await openStore(kind, mode, pristine);
const payload = Buffer.alloc(200, 'd');
const base = Date.now() * 1000;
for (let n = 0; n < 2000; n += 100)
  await Promise.all(Array.from({ length: 100 }, (_, k) => store.publish(`t-${(n + k) % 4}`, base + n + k, payload)));
if (kind === 'level') {
  await store.close();
  const { ClassicLevel } = (await import('node:module')).createRequire(join(process.env.DBCHOICE_MODULES, 'package.json'))('classic-level');
  const db = new ClassicLevel(join(pristine, 'level'));
  await db.open();
  await db.compactRange(Buffer.from([0]), Buffer.from([255]));
  await db.close();
  const again = await openStore(kind, mode, pristine);
  for (let n = 2000; n < 2200; n++) await again.publish(`t-${n % 4}`, base + n, payload);
  await again.close();
} else {
  await store.close();
}

const files = [];
const walk = (p) => {
  for (const f of readdirSync(p)) {
    const full = join(p, f);
    if (statSync(full).isDirectory()) walk(full);
    else files.push({ rel: full.slice(pristine.length + 1), size: statSync(full).size });
  }
};
walk(pristine);
const targets =
  kind === 'level'
    ? [
        files.filter((f) => f.rel.endsWith('.ldb')).sort((a, b) => b.size - a.size)[0],
        files.find((f) => f.rel.endsWith('.log')),
        files.find((f) => f.rel.includes('MANIFEST')),
      ]
    : [files.filter((f) => !f.rel.includes('lock')).sort((a, b) => b.size - a.size)[0]];
const damages = {
  truncateHalf: (p, size) => truncateSync(p, Math.floor(size / 2)),
  scribbleMiddle: (p, size) => scribble(p, Math.floor(size / 2)),
  scribbleStart: (p) => scribble(p, 0),
  empty: (p) => truncateSync(p, 0),
};
function scribble(path, at) {
  const fd = openSync(path, 'r+');
  writeSync(fd, randomBytes(4096), 0, 4096, at);
  closeSync(fd);
}
// Every child works on a copy: opening a store may rewrite its files (LevelDB starts a new log).
const results = [];
for (const target of [{ rel: undefined }, ...targets.filter(Boolean)]) {
  for (const [damage, apply] of target.rel === undefined ? [['none', () => {}]] : Object.entries(damages)) {
    const copy = mkdtempSync(join(tmpdir(), `corrupt-${kind}-copy-`));
    cpSync(pristine, copy, { recursive: true });
    if (target.rel !== undefined) apply(join(copy, target.rel), target.size);
    results.push({ target: target.rel === undefined ? 'none' : `${target.rel} (${target.size} B)`, damage, ...runChild(copy) });
    rmSync(copy, { recursive: true, force: true });
  }
}
function runChild(dir) {
  const r = spawnSync(process.execPath, [childScript, kind, mode, dir], { encoding: 'utf8', env: process.env, timeout: 60_000 });
  const last = r.stdout.trim().split('\n').pop();
  let parsed;
  try {
    parsed = JSON.parse(last);
  } catch {
    parsed = { stdout: last?.slice(0, 200), stderr: r.stderr.trim().split('\n').slice(-2).join(' | ').slice(0, 300) };
  }
  return { exitCode: r.status, signal: r.signal, ...parsed };
}
console.log(JSON.stringify({ step: 'corrupt', kind, expectedEvents: kind === 'level' ? 2200 : 2000, results }));
rmSync(pristine, { recursive: true, force: true });
