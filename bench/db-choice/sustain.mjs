// Sustained load with background trimming: RATE publishes/s (durable mode) spread over 1,000
// topics with a skewed popularity (hot topics hit the count bound, cold ones the age bound), while a
// trimmer visits every topic once a second in chunks of 50 topics per transaction, keeping at most
// KEEP events per topic and none older than TTL. Samples the store's size on disk every 5 s and
// the event loop's longest pause every second (flagged when a trim pass ran in that second).
// Usage: node sustain.mjs KIND MODE SECONDS DIR [RATE]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { diskUsage, openStore } from './stores.mjs';

const [kind, mode, secondsArg, dir, rateArg] = process.argv.slice(2);
const SECONDS = Number(secondsArg);
const RATE = Number(rateArg ?? 1000);
const TOPICS = 1000;
const KEEP = 100;
const TTL_MS = 60_000;
const CHUNK = 50;
const MAX_IN_FLIGHT = 512;

rmSync(dir, { recursive: true, force: true });
const store = await openStore(kind, mode, dir);
const payload = Buffer.alloc(200, 'p');
let seed = 42;
const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
let lastMs = 0;
let seq = 0;
const nextId = () => {
  const ms = Date.now();
  if (ms > lastMs) [lastMs, seq] = [ms, 0];
  else seq++;
  return lastMs * 1000 + seq;
};

const started = Date.now();
let published = 0;
let deleted = 0;
let inFlight = 0;
let refused = 0;
let failed = 0;
const latencies = [];
const publisher = setInterval(() => {
  for (let k = 0; k < RATE / 100; k++) {
    if (inFlight >= MAX_IN_FLIGHT) {
      refused++;
      continue;
    }
    const topic = `topic-${Math.floor(TOPICS * random() ** 3)}`;
    const id = nextId();
    const t0 = process.hrtime.bigint();
    inFlight++;
    store.publish(topic, id, payload).then(
      () => {
        inFlight--;
        published++;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      },
      () => {
        inFlight--;
        failed++;
      },
    );
  }
}, 10);

let trimActive = false;
const chunkMs = [];
let stopping = false;
const trimmer = (async () => {
  while (!stopping) {
    const passStart = Date.now();
    trimActive = true;
    const minId = (Date.now() - TTL_MS) * 1000;
    for (let t = 0; t < TOPICS && !stopping; t += CHUNK) {
      const work = [];
      for (let k = t; k < t + CHUNK; k++) work.push({ topic: `topic-${k}`, keep: KEEP, minId });
      const c0 = process.hrtime.bigint();
      deleted += await store.trimTopics(work);
      chunkMs.push(Number(process.hrtime.bigint() - c0) / 1e6);
      await new Promise((resolve) => setImmediate(resolve));
    }
    trimActive = false;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (Date.now() - passStart))));
  }
})();

const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
const seconds = [];
let trimSeenThisSecond = false;
const watchTrim = setInterval(() => (trimSeenThisSecond ||= trimActive), 5);
const perSecond = setInterval(() => {
  seconds.push({ maxMs: eld.max / 1e6, trim: trimSeenThisSecond });
  eld.reset();
  trimSeenThisSecond = false;
}, 1000);
const samples = [];
const sample = () =>
  samples.push({ s: Math.round((Date.now() - started) / 1000), ...diskUsage(dir), live: published - deleted, load1: loadavg()[0] });
const sampler = setInterval(sample, 5000);

await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
clearInterval(publisher);
stopping = true;
await trimmer;
while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
clearInterval(sampler);
clearInterval(perSecond);
clearInterval(watchTrim);
sample();
await store.close();
const final = diskUsage(dir);
latencies.sort((a, b) => a - b);
chunkMs.sort((a, b) => a - b);
const withTrim = seconds.filter((s) => s.trim).map((s) => s.maxMs);
const withoutTrim = seconds.filter((s) => !s.trim).map((s) => s.maxMs);
console.log(
  JSON.stringify({
    step: 'sustain',
    kind,
    mode,
    seconds: SECONDS,
    targetRate: RATE,
    publishedPerSecond: published / SECONDS,
    refused,
    failed,
    deleted,
    publishP50Ms: latencies[Math.floor(latencies.length * 0.5)],
    publishP99Ms: latencies[Math.floor(latencies.length * 0.99)],
    trimChunks: chunkMs.length,
    trimChunkP50Ms: chunkMs[Math.floor(chunkMs.length * 0.5)],
    trimChunkMaxMs: chunkMs[chunkMs.length - 1],
    eventLoopMaxMsSecondsWithTrim: Math.max(...withTrim),
    eventLoopMaxMsSecondsWithoutTrim: withoutTrim.length ? Math.max(...withoutTrim) : null,
    eventLoopSecondsOver50Ms: seconds.filter((x) => x.maxMs > 50).length,
    eventLoopSecondMaxesMs: seconds.map((x) => Math.round(x.maxMs)),
    eventLoopP99OfSecondMaxesWithTrim: withTrim.sort((a, b) => a - b)[Math.floor(withTrim.length * 0.99)],
    finalAfterClose: final,
    samples,
  }),
);
rmSync(dir, { recursive: true, force: true });
