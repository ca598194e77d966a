/**
 * `npm run bench:store-soak` (issue 14): the default store under a sustained publish load across
 * many topics, to show that the file stops growing once the bounds bite, and how long the server's
 * event loop is ever held while the store trims in the background.
 *
 *   npm run bench:store-soak                       10 minutes
 *   SOAK_SECONDS=120 npm run bench:store-soak
 *   SOAK_SECONDS=180 SOAK_PAD_BYTES=3000 SOAK_NAME=store-soak-bytes npm run bench:store-soak   (the byte bound bites)
 *
 * The built server on CPU 0 (STORE=sqlite, STORE_FSYNC=always) with bounds small enough that every
 * one of them bites within the first two minutes: HISTORY_SIZE=100 per topic, HISTORY_TTL=120 s,
 * HISTORY_MAX_TOPICS=2,000 (of 5,000 topics published to, with a skewed popularity, so the least
 * recently published are forgotten all the time), HISTORY_MAX_BYTES=16 MiB and
 * IDEMPOTENCY_MAX_KEYS=5,000. 500 publishes/s (~300-byte events, one in ten with an idempotency
 * key, each kept with a copy of its event), 100 subscribers on single topics and
 * one on `public/**`. Every 10 s: the file and WAL size on disk, events held, server RSS and CPU,
 * the longest event-loop delay of those 10 s, publish p99 and any refusal.
 * Results: bench/results/store-soak.{json,md}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH, loadAverage, log, percentile, prepare, publisher, sleep, startServer, Subscribers } from './store-kit.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const RATE = 500;
const TOPICS = 5000;
const SAMPLE_MS = 10_000;
/** The results' file name in bench/results/ (`SOAK_NAME`). */
const NAME = process.env.SOAK_NAME ?? 'store-soak';
const BOUNDS = {
  HISTORY_SIZE: '100',
  HISTORY_TTL: '120',
  HISTORY_MAX_TOPICS: '2000',
  HISTORY_MAX_BYTES: String(16 * 2 ** 20),
  IDEMPOTENCY_MAX_KEYS: '5000',
  METRICS: 'token',
  METRICS_TOKEN: 'bench-soak-metrics-token-0123456789abcdef',
};
/** Bytes of padding per event (`SOAK_PAD_BYTES`): larger events make HISTORY_MAX_BYTES the bound that bites first. */
const PAD = 'p'.repeat(Number(process.env.SOAK_PAD_BYTES ?? 230));

interface Sample {
  s: number;
  published: number;
  refused: number;
  dbMiB: number;
  walMiB: number;
  historyEvents: number;
  rssMiB: number;
  cpuPercent: number;
  longestPauseMs: number;
  publishP99Ms: number;
  delivered: number;
  load: string;
}

async function main(): Promise<void> {
  prepare();
  const server = await startServer({ STORE: 'sqlite', STORE_FSYNC: 'always', ...BOUNDS });
  const samples: Sample[] = [];
  /** Why publishes were not answered 201: status codes, or the client's error. */
  const refusals = new Map<string, number>();
  const warnings: string[] = [];
  try {
    const publish = await publisher(server);
    const subscribers = await Subscribers.open(server, [
      ...Array.from({ length: 100 }, (_, i) => `/events?topic=public/t/${i * 7}`),
      '/events?topic=public/**',
    ]);
    const metrics = async () => {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: { authorization: `Bearer ${BOUNDS.METRICS_TOKEN}` } });
      const match = /^notify_history_events (\d+)/m.exec(await res.text());
      return match === null ? NaN : Number(match[1]);
    };
    const started = performance.now();
    const end = started + SECONDS * 1000;
    let published = 0;
    let refused = 0;
    let latencies: number[] = [];
    let inFlight = 0;
    let sampleStart = Date.now();
    let cpuStart = server.cpu();
    let nextSample = started + SAMPLE_MS;
    let sent = 0;
    while (performance.now() < end) {
      const due = started + (sent * 1000) / RATE;
      if (performance.now() < due || inFlight >= 64) {
        await sleep(Math.max(0, Math.min(5, due - performance.now())));
      } else {
        sent++;
        inFlight++;
        // Skewed popularity: a few topics get most events, the long tail is published to rarely.
        const topic = `public/t/${Math.floor(TOPICS * Math.random() ** 3)}`;
        const idempotencyKey = sent % 10 === 0 ? `soak-${sent}` : undefined;
        void publish([topic], { t: Date.now(), p: PAD }, idempotencyKey)
          .then(({ status, ms }) => {
            if (status === 201) published++;
            else {
              refused++;
              refusals.set(String(status), (refusals.get(String(status)) ?? 0) + 1);
            }
            latencies.push(ms);
          })
          .catch((error: unknown) => {
            refused++;
            const kind = (error as { code?: string }).code ?? (error as Error).message;
            refusals.set(kind, (refusals.get(kind) ?? 0) + 1);
          })
          .finally(() => inFlight--);
      }
      if (performance.now() >= nextSample) {
        nextSample += SAMPLE_MS;
        const now = Date.now();
        const cpu = server.cpu();
        const bytes = server.storeBytes();
        latencies.sort((a, b) => a - b);
        const sample: Sample = {
          s: Math.round((performance.now() - started) / 1000),
          published,
          refused,
          dbMiB: bytes.db / 2 ** 20,
          walMiB: bytes.wal / 2 ** 20,
          historyEvents: await metrics(),
          rssMiB: server.rss() / 2 ** 20,
          cpuPercent: ((cpu - cpuStart) / ((now - sampleStart) / 1000)) * 100,
          longestPauseMs: server.longestPause(sampleStart),
          publishP99Ms: percentile(latencies, 0.99),
          delivered: subscribers.delivered,
          load: loadAverage(),
        };
        samples.push(sample);
        log(
          `${sample.s} s: ${published} published, db ${sample.dbMiB.toFixed(1)} MiB + wal ${sample.walMiB.toFixed(1)} MiB, ${sample.historyEvents} held, pause ${sample.longestPauseMs.toFixed(1)} ms, p99 ${sample.publishP99Ms.toFixed(1)} ms`,
        );
        latencies = [];
        sampleStart = now;
        cpuStart = cpu;
      }
    }
    while (inFlight > 0) await sleep(10);
    subscribers.close();
    warnings.push(...server.warnings());
  } finally {
    await server.stop();
  }
  const out = path.join(BENCH, 'results');
  mkdirSync(out, { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    seconds: SECONDS,
    rate: RATE,
    topics: TOPICS,
    padBytes: PAD.length,
    bounds: BOUNDS,
    node: process.version,
  };
  const refusedWhy = [...refusals].map(([why, count]) => `${why}: ${count}`).join(', ') || 'none';
  writeFileSync(
    path.join(out, `${NAME}.json`),
    `${JSON.stringify({ meta, samples, refusals: Object.fromEntries(refusals), warnings }, null, 2)}\n`,
  );
  const f = (value: number, digits = 1) => value.toFixed(digits);
  const lines = [
    `# Store soak (issue 14): ${SECONDS} s of ${RATE} publishes/s over ${TOPICS} topics, ${PAD.length + 30}-byte events`,
    '',
    `${meta.date}, Node ${meta.node}. Bounds: HISTORY_SIZE=${BOUNDS.HISTORY_SIZE}, HISTORY_TTL=${BOUNDS.HISTORY_TTL} s, HISTORY_MAX_TOPICS=${BOUNDS.HISTORY_MAX_TOPICS}, HISTORY_MAX_BYTES=16 MiB, IDEMPOTENCY_MAX_KEYS=${BOUNDS.IDEMPOTENCY_MAX_KEYS}; STORE_FSYNC=always. Sizes are allocated bytes on disk. Reproduce: \`npm run bench:store-soak\`.`,
    '',
    '| s | published | refused | notify.db MiB | -wal MiB | events held | server RSS MiB | server CPU % | longest event-loop pause ms | publish p99 ms | load (1, 5, 15 min) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...samples.map(
      (s) =>
        `| ${s.s} | ${s.published} | ${s.refused} | ${f(s.dbMiB)} | ${f(s.walMiB)} | ${s.historyEvents} | ${f(s.rssMiB)} | ${f(s.cpuPercent, 0)} | ${f(s.longestPauseMs)} | ${f(s.publishP99Ms)} | ${s.load} |`,
    ),
    '',
    `Not answered 201 (status, or the client's error): ${refusedWhy}. Server log lines at warn or above: ${warnings.length}${warnings.length === 0 ? '' : ` (the first: \`${warnings[0]}\`)`}.`,
    '',
  ];
  writeFileSync(path.join(out, `${NAME}.md`), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

main().catch((error) => {
  process.stderr.write(`store soak failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
