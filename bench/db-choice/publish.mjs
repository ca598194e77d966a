// Publish cost: N publishes (one ~200-byte event + an idempotency key, atomically) with C callers,
// each awaiting its publish before the next. Prints one JSON line: latency p50/p99/max (ms),
// publishes per second, the longest event-loop pause and CPU time per publish.
// Usage: node publish.mjs KIND MODE CONCURRENCY COUNT DIR
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { openStore } from './stores.mjs';

const [kind, mode, concurrencyArg, countArg, dir] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const count = Number(countArg);
const TOPICS = 100;
const WARMUP = 200;

rmSync(dir, { recursive: true, force: true });
const store = await openStore(kind, mode, dir);
const body = JSON.stringify({ type: 'order.updated', order: 'x'.repeat(120), at: new Date(0).toISOString() });
const payload = Buffer.from(body.padEnd(200, ' '));
let nextId = Date.now() * 1000;

async function run(total, latencies) {
  let issued = 0;
  const caller = async () => {
    while (issued < total) {
      const n = issued++;
      const id = nextId++;
      const start = process.hrtime.bigint();
      await store.publish(`topic-${n % TOPICS}`, id, payload, `pub-${id}`);
      if (latencies) latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
      // Each publish arrives as its own HTTP request in the server: give the event loop a turn, so
      // a synchronous store's blocking shows in the event-loop delay as it would there.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
}

await run(WARMUP);
const latencies = [];
const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await run(count, latencies);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
eld.disable();
await store.close();
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(
  JSON.stringify({
    step: 'publish',
    kind,
    mode,
    concurrency,
    count,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    maxMs: latencies[latencies.length - 1],
    perSecond: count / seconds,
    cpuUsPerPublish: (cpu.user + cpu.system) / count,
    eventLoopMaxMs: eld.max / 1e6,
    eventLoopP99Ms: eld.percentile(99) / 1e6,
    fsyncDelayUs: process.env.LD_PRELOAD?.includes('slow-fsync') ? Number(process.env.FSYNC_DELAY_US ?? 2000) : 0,
    load1: loadavg()[0],
  }),
);
rmSync(dir, { recursive: true, force: true });
