// Full disk: mounts a 2 MiB tmpfs at MOUNT (needs root), lets crash-child.mjs publish durably into
// it until publishes fail, records how they fail (error code, or the process exiting), grows the
// tmpfs to 16 MiB while the child still runs (does publishing resume by itself?), then kills the
// child and reopens the store in a fresh process: are all acknowledged events there, and does a
// new publish succeed?
// Usage: node disk-full.mjs KIND MODE MOUNT
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from './stores.mjs';

const [kind, mode, mount] = process.argv.slice(2);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
mkdirSync(mount, { recursive: true });
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount], { encoding: 'utf8' });
if (mounted.status !== 0) {
  console.log(JSON.stringify({ kind, mode, skipped: `could not mount a tmpfs: ${mounted.stderr.trim()}` }));
  process.exit(0);
}
const dir = join(mount, 'store');
const result = { step: 'diskfull', kind, mode };
try {
  const child = spawn(process.execPath, [here('./crash-child.mjs'), kind, mode, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const acked = [];
  const failures = [];
  let buffered = '';
  let exitInfo;
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((exitInfo = { code, signal }))));
  let sawFailure;
  const firstFailure = new Promise((resolve) => (sawFailure = resolve));
  let onAck = () => {};
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop();
    for (const line of lines) {
      if (line.startsWith('ack ')) {
        acked.push(Number(line.slice(4)));
        onAck();
      } else if (line.startsWith('fail ')) {
        failures.push(line.slice(5));
        sawFailure();
      }
    }
  });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const exitedEarly = exited.then((e) => `exited code=${e.code} signal=${e.signal}`);
  const how = await Promise.race([
    firstFailure.then(() => 'publishes failed'),
    exitedEarly,
    sleep(60_000).then(() => 'no failure in 60 s'),
  ]);
  await Promise.race([sleep(1000), exitedEarly]);
  result.outcome = exitInfo
    ? `${how}, then the process exited (code ${exitInfo.code}, signal ${exitInfo.signal})`
    : `${how}, process still running`;
  result.ackedBeforeFull = acked.length;
  result.firstFailure = failures[0];
  result.distinctFailures = [...new Set(failures)].slice(0, 3);
  // Give the disk room again while the process runs: does publishing resume without a restart?
  spawnSync('mount', ['-o', 'remount,size=16m', mount]);
  const ackedAtRemount = acked.length;
  const resumed = await Promise.race([
    new Promise((resolve) => (onAck = () => resolve(true))),
    exitedEarly.then(() => false),
    sleep(10_000).then(() => false),
  ]);
  result.resumedWithoutRestart = resumed && acked.length > ackedAtRemount;
  result.childStderrTail = stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 300) || undefined;
  child.kill('SIGKILL');
  await exited;
  const reopened = spawnSync(process.execPath, [here('./corrupt-open.mjs'), kind, mode, dir], {
    encoding: 'utf8',
    env: process.env,
    timeout: 60_000,
  });
  result.reopenAfterSpaceFreed = {
    exitCode: reopened.status,
    signal: reopened.signal,
    ...JSON.parse(reopened.stdout.trim().split('\n').pop() || '{}'),
  };
  // Exactly which acknowledged publishes survived (read in this process, after the child's check).
  const store = await openStore(kind, mode, dir);
  const present = new Set();
  for (let t = 0; t < 4; t++) for (const row of await store.replay(`t-${t}`, 0, 1e9)) present.add(Number(row.id));
  await store.close();
  result.ackedTotal = acked.length;
  result.ackedMissing = acked.filter((id) => !present.has(id)).length;
  result.ackedMissingBeforeFull = acked.slice(0, result.ackedBeforeFull).filter((id) => !present.has(id)).length;
} finally {
  spawnSync('umount', [mount]);
}
console.log(JSON.stringify(result));
