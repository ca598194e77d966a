// Crash safety: RUNS times, a child publishes durably; right after it reports its K-th durable
// publish (K random in 20..300) the parent sends SIGKILL. The parent then reopens the store and
// checks that every id the child reported is there. Prints one JSON line.
// Usage: node crash.mjs KIND MODE RUNS
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from './stores.mjs';

const [kind, mode, runsArg] = process.argv.slice(2);
const runs = Number(runsArg);
const child = fileURLToPath(new URL('./crash-child.mjs', import.meta.url));
let seed = 7;
const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const results = [];
for (let r = 0; r < runs; r++) {
  const dir = mkdtempSync(join(tmpdir(), `crash-${kind}-`));
  const killAfter = 20 + Math.floor(random() * 281);
  const acked = [];
  const proc = spawn(process.execPath, [child, kind, mode, dir], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  let buffered = '';
  let killed = false;
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  proc.stdout.on('data', (chunk) => {
    if (killed) return;
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop();
    for (const line of lines) if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
    if (acked.length >= killAfter) {
      proc.kill('SIGKILL');
      killed = true;
    }
  });
  const exit = await exited;
  const store = await openStore(kind, kind === 'lmdb' ? 'committed' : kind === 'level' ? 'nosync' : 'normal', dir);
  const present = new Set();
  for (let t = 0; t < 4; t++) for (const row of await store.replay(`t-${t}`, 0, 1e9)) present.add(Number(row.id));
  await store.close();
  const missing = acked.filter((id) => !present.has(id));
  results.push({ acked: acked.length, storedAfterRestart: present.size, missing: missing.length, signal: exit.signal });
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  JSON.stringify({
    step: 'crash',
    kind,
    mode,
    runs,
    runsWithLoss: results.filter((r) => r.missing > 0).length,
    ackedTotal: results.reduce((a, r) => a + r.acked, 0),
    missingTotal: results.reduce((a, r) => a + r.missing, 0),
    unackedButStored: results.reduce((a, r) => a + (r.storedAfterRestart - (r.acked - r.missing)), 0),
    allKilledBySigkill: results.every((r) => r.signal === 'SIGKILL'),
    load1: loadavg()[0],
  }),
);
