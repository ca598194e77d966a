/**
 * `npm run bench:store` (issue 14): what the persistent default costs beside the in-memory store,
 * on the built server (`dist/main.js`) pinned to CPU 0, the bench on CPU 1.
 *
 *   npm run bench:store                 3 rounds of every store (~6 minutes)
 *   npm run bench:store -- --rounds 1
 *
 * Stores: `sqlite` with STORE_FSYNC=always (the default: every 201 is fsynced), `sqlite` with
 * STORE_FSYNC=everysec (fsync once a second), and `memory`. Each round runs them in a rotated order.
 * Per store and round:
 *   - publish, 1 caller: 1,000 publishes one after another: latency p50/p99, server CPU per publish;
 *   - publish, 16 callers: 4,000 publishes: publishes per second and per server CPU-second;
 *   - fan-out: 1,000 subscribers on one topic, 200 events as fast as delivery keeps up (at most
 *     two outstanding per subscriber): delivered events per server CPU-second;
 *   - the longest event-loop delay of the server during all of it (`preload-loop-delay.mjs`).
 * A publish is ~200 bytes of data on one of 100 topics. Server CPU is user + system time of every
 * thread (the store's writer thread included), from /proc. Results: bench/results/store-bench.{json,md}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH, loadAverage, log, percentile, prepare, publisher, sleep, startServer, Subscribers, type BenchServer } from './store-kit.js';

const args = process.argv.slice(2);
const roundsArg = args.indexOf('--rounds');
const ROUNDS = roundsArg >= 0 ? Number(args[roundsArg + 1]) : 3;
const SERIAL = 1000;
const CONCURRENT = 4000;
const CALLERS = 16;
const SUBSCRIBERS = 1000;
const FANOUT_EVENTS = 200;
const PAD = 'x'.repeat(170);

const STORES = [
  { name: 'sqlite (STORE_FSYNC=always, the default)', env: { STORE: 'sqlite', STORE_FSYNC: 'always' } },
  { name: 'sqlite (STORE_FSYNC=everysec)', env: { STORE: 'sqlite', STORE_FSYNC: 'everysec' } },
  { name: 'memory (STORE=memory)', env: { STORE: 'memory' } },
] as const;

interface Result {
  store: string;
  round: number;
  load: string;
  serial: { p50Ms: number; p99Ms: number; cpuUsPerPublish: number };
  concurrent: { perS: number; perCpuS: number; cpuUsPerPublish: number; p99Ms: number };
  fanout: { delivered: number; perCpuS: number; perS: number };
  longestPauseMs: number;
  storeMiB: number;
}

async function measure(server: BenchServer, store: string, round: number): Promise<Result> {
  const publish = await publisher(server);
  const started = Date.now();
  const send = async () => {
    const { status, ms } = await publish([`public/t/${Math.floor(Math.random() * 100)}`], { t: 0, p: PAD });
    if (status !== 201) throw new Error(`publish answered ${status}`);
    return ms;
  };
  for (let i = 0; i < 200; i++) await send(); // warm-up: JIT, pools, the first pages of the file

  let cpu0 = server.cpu();
  const serial: number[] = [];
  for (let i = 0; i < SERIAL; i++) serial.push(await send());
  const serialCpu = server.cpu() - cpu0;
  serial.sort((a, b) => a - b);

  cpu0 = server.cpu();
  let t0 = performance.now();
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (next < CONCURRENT) {
        next++;
        latencies.push(await send());
      }
    }),
  );
  const concurrentSeconds = (performance.now() - t0) / 1000;
  const concurrentCpu = server.cpu() - cpu0;
  latencies.sort((a, b) => a - b);

  const subscribers = await Subscribers.open(
    server,
    Array.from({ length: SUBSCRIBERS }, () => '/events?topic=public/bench'),
  );
  await sleep(500);
  cpu0 = server.cpu();
  t0 = performance.now();
  let published = 0;
  const deadline = t0 + 60_000;
  while (published < FANOUT_EVENTS && performance.now() < deadline) {
    if (published * SUBSCRIBERS - subscribers.delivered > 2 * SUBSCRIBERS) {
      await sleep(1);
      continue;
    }
    const { status } = await publish(['public/bench'], { t: Date.now(), p: PAD });
    if (status !== 201) throw new Error(`publish answered ${status}`);
    published++;
  }
  while (subscribers.delivered < published * SUBSCRIBERS && performance.now() < deadline) await sleep(5);
  const fanoutSeconds = (performance.now() - t0) / 1000;
  const fanoutCpu = server.cpu() - cpu0;
  const delivered = subscribers.delivered;
  subscribers.close();
  const bytes = server.storeBytes();
  return {
    store,
    round,
    load: loadAverage(),
    serial: { p50Ms: percentile(serial, 0.5), p99Ms: percentile(serial, 0.99), cpuUsPerPublish: (serialCpu / SERIAL) * 1e6 },
    concurrent: {
      perS: CONCURRENT / concurrentSeconds,
      perCpuS: CONCURRENT / Math.max(concurrentCpu, 0.01),
      cpuUsPerPublish: (concurrentCpu / CONCURRENT) * 1e6,
      p99Ms: percentile(latencies, 0.99),
    },
    fanout: { delivered, perCpuS: delivered / Math.max(fanoutCpu, 0.01), perS: delivered / fanoutSeconds },
    longestPauseMs: server.longestPause(started),
    storeMiB: (bytes.db + bytes.wal) / 2 ** 20,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
};

function render(results: Result[], meta: Record<string, unknown>): string {
  const f = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const memory = results.filter((r) => r.store.startsWith('memory'));
  const base = (pick: (r: Result) => number) => median(memory.map(pick));
  const lines = [
    `# Store benchmark (issue 14): the persistent default beside the in-memory store`,
    '',
    `${String(meta.date)}, commit ${String(meta.commit)}, ${String(meta.rounds)} rounds, Node ${String(meta.node)}, ${String(meta.cpus)} CPUs (server on CPU 0, bench on CPU 1; the machine is shared: the 1-minute load average is beside every run). Medians over the rounds; \`x memory\` is the ratio to the memory store's median. Reproduce: \`npm run bench:store\`.`,
    '',
    '| store | publishes/s, 16 callers | publishes per server CPU-s | x memory | CPU µs per publish (16 callers) | CPU µs per publish (1 caller) | publish p50 / p99 ms (1 caller) | p99 ms (16 callers) | fan-out events per server CPU-s (1,000 subscribers) | x memory | longest event-loop pause ms | store file MiB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { name } of STORES) {
    const mine = results.filter((r) => r.store === name);
    if (mine.length === 0) continue;
    const m = (pick: (r: Result) => number) => median(mine.map(pick));
    lines.push(
      `| ${name} | ${f(m((r) => r.concurrent.perS))} | ${f(m((r) => r.concurrent.perCpuS))} | ${f(m((r) => r.concurrent.perCpuS) / base((r) => r.concurrent.perCpuS), 2)} | ${f(m((r) => r.concurrent.cpuUsPerPublish))} | ${f(m((r) => r.serial.cpuUsPerPublish))} | ${f(
        m((r) => r.serial.p50Ms),
        2,
      )} / ${f(
        m((r) => r.serial.p99Ms),
        2,
      )} | ${f(
        m((r) => r.concurrent.p99Ms),
        1,
      )} | ${f(m((r) => r.fanout.perCpuS))} | ${f(m((r) => r.fanout.perCpuS) / base((r) => r.fanout.perCpuS), 2)} | ${f(Math.max(...mine.map((r) => r.longestPauseMs)), 1)} | ${f(
        m((r) => r.storeMiB),
        1,
      )} |`,
    );
  }
  lines.push(
    '',
    '## Every run',
    '',
    '| store | round | load (1, 5, 15 min) | publishes per CPU-s | CPU µs/publish (1 caller) | fan-out per CPU-s | longest pause ms |',
    '|---|---|---|---|---|---|---|',
  );
  for (const r of results) {
    lines.push(
      `| ${r.store} | ${r.round} | ${r.load} | ${f(r.concurrent.perCpuS)} | ${f(r.serial.cpuUsPerPublish)} | ${f(r.fanout.perCpuS)} | ${f(r.longestPauseMs, 1)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  prepare();
  const results: Result[] = [];
  const meta = {
    date: new Date().toISOString(),
    commit: (await import('node:child_process')).execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim(),
    rounds: ROUNDS,
    node: process.version,
    cpus: (await import('node:os')).cpus().length,
  };
  for (let round = 1; round <= ROUNDS; round++) {
    for (let i = 0; i < STORES.length; i++) {
      const store = STORES[(i + round - 1) % STORES.length]!;
      const server = await startServer(store.env);
      try {
        log(`round ${round}: ${store.name}`);
        const result = await measure(server, store.name, round);
        results.push(result);
        log(
          `${store.name}: ${Math.round(result.concurrent.perCpuS)} publishes/CPU-s, ${Math.round(result.serial.cpuUsPerPublish)} µs/publish alone, ${Math.round(result.fanout.perCpuS)} events/CPU-s fan-out, pause ${result.longestPauseMs.toFixed(1)} ms`,
        );
      } finally {
        await server.stop();
      }
    }
  }
  const out = path.join(BENCH, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'store-bench.json'), `${JSON.stringify({ meta, results }, null, 2)}\n`);
  writeFileSync(path.join(out, 'store-bench.md'), render(results, meta));
  process.stdout.write(render(results, meta));
}

main().catch((error) => {
  process.stderr.write(`store bench failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
