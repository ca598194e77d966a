// Replay read: 10 topics x 5,000 events are written, the store is closed and reopened, then
// "the 1,000 events after id X" is read from one topic, and from each of the 10 topics in turn.
// Prints one JSON line with the median and p90 of REPEAT reads (ms).
// Usage: node replay.mjs KIND MODE DIR [REPEAT]
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { openStore } from './stores.mjs';

const [kind, mode, dir, repeatArg] = process.argv.slice(2);
const REPEAT = Number(repeatArg ?? 30);
const TOPICS = 10;
const PER_TOPIC = 5000;
const READ = 1000;

rmSync(dir, { recursive: true, force: true });
let store = await openStore(kind, mode, dir);
const payload = Buffer.alloc(200, 'e');
const base = Date.now() * 1000;
const idOf = (topic, n) => base + n * TOPICS + topic;
for (let n = 0; n < PER_TOPIC; n += 100) {
  const pending = [];
  for (let k = n; k < n + 100; k++) for (let t = 0; t < TOPICS; t++) pending.push(store.publish(`topic-${t}`, idOf(t, k), payload));
  await Promise.all(pending);
}
if (kind !== 'memory') {
  await store.close();
  store = await openStore(kind, mode, dir);
}

const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
const timed = async (fn) => {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
};
const check = (rows, topic, from) => {
  if (rows.length !== READ || rows[0].id !== idOf(topic, from + 1) || rows[0].payload.length !== 200) {
    throw new Error(`replay returned ${rows.length} rows starting at ${rows[0]?.id}`);
  }
};
const one = [];
const ten = [];
for (let r = 0; r < REPEAT; r++) {
  const from = 1000 + ((r * 97) % 3000);
  one.push(await timed(async () => check(await store.replay('topic-3', idOf(3, from), READ), 3, from)));
  ten.push(
    await timed(async () => {
      for (let t = 0; t < TOPICS; t++) check(await store.replay(`topic-${t}`, idOf(t, from), READ), t, from);
    }),
  );
}
await store.close();
console.log(
  JSON.stringify({
    step: 'replay',
    kind,
    mode,
    oneTopicMedianMs: median(one),
    oneTopicP90Ms: p90(one),
    tenTopicsMedianMs: median(ten),
    tenTopicsP90Ms: p90(ten),
    load1: loadavg()[0],
  }),
);
rmSync(dir, { recursive: true, force: true });
