/**
 * `npm run bench`: this server (embedded default, everything on) against a raw `node:http` SSE
 * fan-out and nchan, with one lean load client. See bench/README.md for what each figure means.
 *
 *   npm run bench                 full: 3 runs, 1k/5k/10k/19k subscribers (~10 minutes)
 *   npm run bench -- --quick      1 run, 1k/5k subscribers, shorter phases (~1.5 minutes)
 *   npm run bench -- --runs 5     more runs
 *   npm run bench -- --only notify,raw
 *
 * Then the store benchmark (`bench/store-bench.ts`, also `npm run bench:store`): publishes per
 * server CPU-second and fan-out events per CPU-second on the persistent default (`STORE=sqlite`)
 * beside the in-memory store, as many rounds as runs (`--only store` runs just that).
 *
 * The server under test is pinned to CPU 0, the load clients and this process to CPU 1. Every loop
 * is bounded in count and in time; every address is loopback.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientCommand, Scheme } from './load-client.js';
import { cpuSeconds, processTree, rssBytes } from './proc.js';
import { renderMarkdown, renderSvg, summarise, type RunResult, type ServerResult, type StormResult, type Throughput } from './report.js';
import { signToken, type SigningSetup } from './tokens.js';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const runsArg = args.indexOf('--runs');
const RUNS = runsArg >= 0 ? Number(args[runsArg + 1]) : quick ? 1 : 3;
const onlyArg = args.indexOf('--only');
const ONLY = onlyArg >= 0 ? new Set(args[onlyArg + 1]!.split(',')) : undefined;
const SWEEP = quick ? [1000, 5000] : [1000, 5000, 10000, 19000];
const LATENCY_AT = quick ? 5000 : 10000;
const TOPIC_SWEEP_AT = quick ? 5000 : 10000;
/** Deliveries per throughput phase: events = DELIVERIES / subscribers. */
const DELIVERIES = quick ? 100_000 : 150_000;
const LATENCY_EVENTS = quick ? 6 : 10;
const PUBLISHES = quick ? 1000 : 3000;
const CLIENTS = 4;
const PHASE_TIMEOUT_MS = 30_000;
/** The connect storm: this many subscribers drop and reconnect at once, with Last-Event-ID, while events go out at STORM_RATE. */
const STORM = quick ? 2000 : 10_000;
const STORM_RATE_PER_S = 10;
/** Subscribers over HTTPS/1.1 and over HTTP/2 for the memory figures with TLS. */
const TLS_AT = quick ? 1000 : 5000;
/** Bursts: this many publishes in flight at once, repeated, to BURST_AT subscribers. */
const BURST = 10;
const BURST_ROUNDS = quick ? 5 : 10;
const BURST_AT = quick ? 5000 : 10000;
/** ~200-byte events: the padding makes every server's frame about that size. */
const PAD = 'x'.repeat(150);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const log = (...parts: unknown[]) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${parts.join(' ')}\n`);

// ---------------------------------------------------------------- load clients

/** A command without its id, for each kind of command. */
type WithoutId<C> = C extends unknown ? Omit<C, 'id'> : never;

class LoadClient {
  private nextId = 0;
  private readonly waiting = new Map<number, (reply: any) => void>();
  constructor(readonly child: ChildProcess) {
    child.on('message', (reply: { id: number }) => {
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
  }
  call<T = any>(command: WithoutId<ClientCommand>, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`load client: ${command.cmd} timed out`));
      }, timeoutMs);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.child.send({ ...command, id });
    });
  }
}

function startClients(): LoadClient[] {
  return Array.from({ length: CLIENTS }, () => {
    const child = spawn('taskset', ['-c', '1', process.execPath, '--import', 'tsx', path.join(BENCH, 'load-client.ts')], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      cwd: ROOT,
    });
    return new LoadClient(child);
  });
}

/** Source addresses rotate over 127.0.0.2-254: each batch binds fresh ports, so TIME_WAIT never runs a range dry. */
let addressCounter = 0;
const nextSourceAddress = () => `127.0.0.${2 + (addressCounter++ % 253)}`;

// ---------------------------------------------------------------- servers

interface Target {
  readonly name: 'notify' | 'raw' | 'nchan';
  readonly label: string;
  readonly port: number;
  readonly pids: () => number[];
  /** Subscriber i's request path for a topic layout. */
  readonly path: (i: number, layout: Layout) => string;
  readonly signing: SigningSetup | undefined;
  /** POST body and path for one event carrying `t` (and, in the storm, the sequence number `s`). */
  readonly publish: (t: number, s?: number) => { path: string; body: string };
  readonly gc: () => void;
  readonly snapshot: () => void;
  stop(): Promise<void>;
}

type Layout = 'broadcast' | 'topics-100' | 'topics-10000' | 'wildcard';

interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

/** A self-signed P-256 certificate for 127.0.0.1 in a temporary directory (openssl). */
function makeCertificate(): TlsFiles {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-tls-'));
  const files = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    files.key,
    '-out',
    files.cert,
  ]);
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr.toString()}`);
  return files;
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const exited = once(child, 'exit');
  const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
  await exited;
  clearTimeout(timer);
}

/** BENCH_CPU_PROF=DIR writes a V8 CPU profile of each Node server into DIR (see bench/README.md). */
const NODE_SERVER_FLAGS = [
  '--expose-gc',
  '--import',
  path.join(BENCH, 'preload-gc.mjs'),
  ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(process.env.BENCH_CPU_PROF)] : []),
];

async function startNotify(tls?: TlsFiles): Promise<Target> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-notify-'));
  const port = await freePort();
  const tlsEnv = tls === undefined ? {} : { TLS_CERT_FILE: tls.cert, TLS_KEY_FILE: tls.key };
  // Logs stay on (info, one line per request) and go to a pipe that this process drains, as they
  // would to a log collector; a file on this machine's overlay disk costs ~150 µs per line.
  const child = spawn('taskset', ['-c', '0', process.execPath, ...NODE_SERVER_FLAGS, path.join(ROOT, 'dist', 'main.js')], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: path.join(dir, 'data'), ...tlsEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let started = '';
  const onLog = (chunk: Buffer) => {
    if (started.length < 100_000) started += chunk.toString();
  };
  child.stdout.on('data', onLog);
  await waitFor(() => started.includes('"listening"'), 'notify to listen');
  child.stdout.off('data', onLog);
  child.stdout.resume();
  // The default JWT_ISSUER is http://HOST:PORT, with or without TLS.
  const issuer = `http://127.0.0.1:${port}`;
  const signing: SigningSetup = { keyFile: path.join(dir, 'data', 'signing-key-ed25519.pem'), issuer, audience: 'notify', ttl: 300 };
  return {
    name: 'notify',
    label: 'notify (this server)',
    port,
    pids: () => [child.pid!],
    path: (i, layout) => {
      switch (layout) {
        case 'broadcast':
          return '/events?topic=public/bench';
        case 'topics-100':
          return `/events?topic=public/t/${i % 100}&topic=public/bench`;
        case 'topics-10000':
          return `/events?topic=public/t/${i % 10000}&topic=public/bench`;
        case 'wildcard':
          return `/events?topic=users/u${i}/**&topic=public/*`;
      }
    },
    signing,
    publish: (t, s) => ({ path: '/events', body: JSON.stringify({ topics: ['public/bench'], data: { t, s, p: PAD } }) }),
    gc: () => child.kill('SIGUSR2'),
    snapshot: () => child.kill('SIGWINCH'),
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startNodeScript(script: string, extraArgs: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    'taskset',
    ['-c', '0', process.execPath, ...NODE_SERVER_FLAGS, path.join(BENCH, 'servers', script), '0', ...extraArgs],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(/listening (\d+)/.exec(line.toString())![1]);
  child.stdout.resume();
  return { child, port };
}

async function startRaw(tls?: TlsFiles): Promise<Target> {
  const { child, port } = await startNodeScript('raw-node.mjs', tls === undefined ? [] : ['--tls', tls.cert, tls.key]);
  return {
    name: 'raw',
    label: 'raw node:http',
    port,
    pids: () => [child.pid!],
    path: () => '/sub',
    signing: undefined,
    publish: (t, s) => ({ path: '/pub', body: JSON.stringify({ t, s, p: PAD }) }),
    gc: () => child.kill('SIGUSR2'),
    snapshot: () => child.kill('SIGWINCH'),
    stop: () => stopChild(child),
  };
}

function nchanAvailable(): boolean {
  return spawnSync('which', ['nginx']).status === 0 && existsSync('/usr/lib/nginx/modules/ngx_nchan_module.so');
}

async function startNchan(): Promise<Target> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-nchan-'));
  const port = await freePort();
  const conf = readFileSync(path.join(BENCH, 'nginx.conf.template'), 'utf8').replaceAll('@DIR@', dir).replaceAll('@PORT@', String(port));
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawn('taskset', ['-c', '0', 'nginx', '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitFor(() => processTree(child.pid!).length > 1, 'nginx worker');
  await sleep(300);
  return {
    name: 'nchan',
    label: 'nchan (nginx, C)',
    port,
    pids: () => processTree(child.pid!),
    path: () => '/sub?id=bench',
    signing: undefined,
    publish: (t, s) => ({ path: '/pub?id=bench', body: JSON.stringify({ t, s, p: PAD }) }),
    gc: () => {},
    snapshot: () => {},
    async stop() {
      await stopChild(child, 'SIGQUIT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- phases

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function post(port: number, urlPath: string, body: string, token: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', headers, agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('publish timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

class Bench {
  open = 0;
  constructor(
    readonly clients: LoadClient[],
    readonly target: Target,
  ) {}

  private publisherToken: string | undefined;
  private tokenAt = 0;
  async token(): Promise<string | undefined> {
    if (this.target.signing === undefined) return undefined;
    if (this.publisherToken === undefined || Date.now() - this.tokenAt > 60_000) {
      this.publisherToken = await signToken(this.target.signing, 'bench-publisher');
      this.tokenAt = Date.now();
    }
    return this.publisherToken;
  }

  async publishOne(seq?: number): Promise<void> {
    const { path: urlPath, body } = this.target.publish(nowMs(), seq);
    const status = await post(this.target.port, urlPath, body, await this.token());
    if (status >= 300) throw new Error(`${this.target.name}: publish answered ${status}`);
  }

  /** Opens subscribers [open, n) spread over the clients; returns connects/s and server CPU per connect. */
  async connectTo(
    n: number,
    layout: Layout,
    options: { scheme?: Scheme; track?: boolean } = {},
  ): Promise<{ connectsPerS: number; connectsPerCpuS: number }> {
    const want = n - this.open;
    if (want <= 0) return { connectsPerS: 0, connectsPerCpuS: 0 };
    const cpu0 = cpuSeconds(this.target.pids());
    const t0 = performance.now();
    const per = Math.ceil(want / this.clients.length);
    const results = await Promise.all(
      this.clients.map((client, k) => {
        const start = this.open + k * per;
        const count = Math.max(0, Math.min(per, n - start));
        const indices = Array.from({ length: count }, (_, j) => start + j);
        return client.call<{ ok: number; failed: number }>({
          cmd: 'connect',
          host: '127.0.0.1',
          port: this.target.port,
          localAddress: nextSourceAddress(),
          paths: indices.map((i) => this.target.path(i, layout)),
          subjects: this.target.signing === undefined ? undefined : indices.map((i) => `u${i}`),
          signing: this.target.signing,
          concurrency: 32,
          timeoutMs: options.scheme === undefined || options.scheme === 'http' ? 5_000 : 20_000,
          scheme: options.scheme,
          track: options.track,
        });
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(this.target.pids()) - cpu0;
    const ok = results.reduce((sum, r) => sum + r.ok, 0);
    const failed = results.reduce((sum, r) => sum + r.failed, 0);
    if (failed > 0) log(`${this.target.name}: ${failed} of ${want} subscribers failed to connect`);
    this.open += ok;
    return { connectsPerS: ok / seconds, connectsPerCpuS: ok / Math.max(cpu, 0.01) };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.call({ cmd: 'close' })));
    this.open = 0;
    await sleep(1500);
  }

  async delivered(): Promise<number> {
    const stats = await Promise.all(this.clients.map((c) => c.call<{ events: number }>({ cmd: 'stats' })));
    return stats.reduce((sum, s) => sum + s.events, 0);
  }

  async idleRss(): Promise<number> {
    this.target.gc();
    await sleep(700);
    if (process.env.BENCH_HEAP_DIR) {
      this.target.snapshot();
      await sleep(8000);
    }
    return rssBytes(this.target.pids());
  }

  /**
   * Publishes `count` events, either every `intervalMs` or (intervalMs 0) as fast as delivery
   * keeps up: at most `window` events published and not yet delivered to every subscriber.
   */
  async fanout(count: number, intervalMs: number, window = 2) {
    await Promise.all(this.clients.map((c) => c.call({ cmd: 'reset' })));
    const n = this.open;
    const cpu0 = cpuSeconds(this.target.pids());
    const t0 = performance.now();
    const deadline = t0 + PHASE_TIMEOUT_MS;
    let published = 0;
    while (published < count && performance.now() < deadline) {
      if (intervalMs > 0) {
        const due = t0 + published * intervalMs;
        if (performance.now() < due) await sleep(due - performance.now());
      } else if (published * n - (await this.delivered()) > window * n) {
        await sleep(1);
        continue;
      }
      await this.publishOne();
      published++;
    }
    let delivered = 0;
    while (performance.now() < deadline) {
      delivered = await this.delivered();
      if (delivered >= published * n) break;
      await sleep(5);
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(this.target.pids()) - cpu0;
    const stats = await Promise.all(this.clients.map((c) => c.call<{ events: number; latencies: number[] }>({ cmd: 'stats' })));
    const latencies = stats.flatMap((s) => s.latencies).sort((a, b) => a - b);
    const pick = (q: number) =>
      latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    if (delivered < published * n) log(`${this.target.name}: only ${delivered} of ${published * n} deliveries within the time bound`);
    return {
      subscribers: n,
      events: published,
      delivered,
      seconds,
      cpuSeconds: cpu,
      eventsPerS: delivered / seconds,
      eventsPerCpuS: delivered / Math.max(cpu, 0.01),
      p50Ms: pick(0.5),
      p99Ms: pick(0.99),
    };
  }

  /**
   * The connect storm (issue 12): `open` tracked subscribers hear events at STORM_RATE_PER_S, all
   * drop at once and reconnect at once, each with its Last-Event-ID and a fresh token, while the
   * events go on. Zero loss and zero duplicates means every subscriber's sequence numbers run
   * without a gap or a repeat across the reconnect.
   */
  async storm(): Promise<StormResult> {
    let seq = 0;
    let publishing = true;
    const publisher = (async () => {
      const t0 = performance.now();
      while (publishing) {
        const due = t0 + seq * (1000 / STORM_RATE_PER_S);
        if (performance.now() < due) await sleep(due - performance.now());
        if (!publishing) break;
        await this.publishOne(seq++);
      }
    })();
    try {
      await sleep(1500);
      const resumeSeq = seq - 1;
      const n = this.open;
      await Promise.all(this.clients.map((c) => c.call({ cmd: 'drop' })));
      const cpu0 = cpuSeconds(this.target.pids());
      const t0 = nowMs();
      const reconnects = await Promise.all(
        this.clients.map((c) =>
          c.call<{ ok: number; failed: number; lastAt: number }>(
            { cmd: 'reconnect', resumeSeq, concurrency: 64, timeoutMs: 20_000, localAddress: nextSourceAddress() },
            300_000,
          ),
        ),
      );
      const cpu = cpuSeconds(this.target.pids()) - cpu0;
      const connected = reconnects.reduce((sum, r) => sum + r.ok, 0);
      const lastConnectedMs = Math.max(...reconnects.map((r) => r.lastAt)) - t0;
      await sleep(1500);
      publishing = false;
      await publisher;
      const lastSeq = seq - 1;
      type Stats = { open: number; resumed: number; lastResumedAt: number; gaps: number; dups: number; minLastSeq: number };
      let stats: Stats[] = [];
      const deadline = performance.now() + PHASE_TIMEOUT_MS;
      while (performance.now() < deadline) {
        stats = await Promise.all(this.clients.map((c) => c.call<Stats>({ cmd: 'storm-stats' })));
        if (stats.every((x) => x.minLastSeq >= lastSeq)) break;
        await sleep(100);
      }
      const resumed = stats.reduce((sum, x) => sum + x.resumed, 0);
      const result: StormResult = {
        subscribers: n,
        reconnected: connected,
        resumed,
        lost: stats.reduce((sum, x) => sum + x.gaps, 0),
        duplicates: stats.reduce((sum, x) => sum + x.dups, 0),
        behind: stats.filter((x) => x.minLastSeq < lastSeq).length,
        cpuSeconds: cpu,
        connectsPerCpuS: connected / Math.max(cpu, 0.01),
        lastConnectedMs,
        lastResumedMs: resumed === 0 ? NaN : Math.max(...stats.map((x) => x.lastResumedAt)) - t0,
      };
      this.open = connected;
      return result;
    } finally {
      publishing = false;
      await publisher;
    }
  }

  /** Bursts: BURST publishes at once, BURST_ROUNDS times, each round delivered to everyone before the next. */
  async burst(): Promise<Throughput> {
    await Promise.all(this.clients.map((c) => c.call({ cmd: 'reset' })));
    const n = this.open;
    const cpu0 = cpuSeconds(this.target.pids());
    const t0 = performance.now();
    const deadline = t0 + PHASE_TIMEOUT_MS;
    let published = 0;
    let delivered = 0;
    for (let round = 0; round < BURST_ROUNDS && performance.now() < deadline; round++) {
      await Promise.all(Array.from({ length: BURST }, () => this.publishOne()));
      published += BURST;
      while (performance.now() < deadline) {
        delivered = await this.delivered();
        if (delivered >= published * n) break;
        await sleep(5);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(this.target.pids()) - cpu0;
    if (delivered < published * n) log(`${this.target.name}: only ${delivered} of ${published * n} burst deliveries within the time bound`);
    return {
      subscribers: n,
      events: published,
      delivered,
      seconds,
      cpuSeconds: cpu,
      eventsPerS: delivered / seconds,
      eventsPerCpuS: delivered / Math.max(cpu, 0.01),
      p50Ms: NaN,
      p99Ms: NaN,
    };
  }

  async publishRate(): Promise<{ perS: number; perCpuS: number }> {
    const cpu0 = cpuSeconds(this.target.pids());
    const t0 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < PUBLISHES) {
        next++;
        await this.publishOne();
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(this.target.pids()) - cpu0;
    return { perS: PUBLISHES / seconds, perCpuS: PUBLISHES / Math.max(cpu, 0.01) };
  }
}

async function measureServer(clients: LoadClient[], target: Target): Promise<ServerResult> {
  const bench = new Bench(clients, target);
  const result: ServerResult = { name: target.name, label: target.label, sweep: [], topics: [] };
  // Warm up: a few connections and events, so JIT and pools are not charged to the first point.
  await bench.connectTo(200, 'broadcast');
  await bench.fanout(20, 0);
  await bench.closeAll();
  // Publishes first, on a fresh heap: after the storm, the collection of 10,000 torn-down streams
  // fell into this phase and charged notify for garbage the Koa baseline (a fresh process) never has.
  if (target.name === 'notify') result.publishes = await bench.publishRate();
  const rss0 = await bench.idleRss();
  for (const n of SWEEP) {
    const connect = await bench.connectTo(n, 'broadcast');
    const rss = await bench.idleRss();
    const throughput = await bench.fanout(Math.max(5, Math.ceil(DELIVERIES / n)), 0);
    result.sweep.push({ rssBytes: rss, memPerSubscriber: (rss - rss0) / bench.open, ...throughput, ...connect });
    log(
      `${target.name} ${bench.open} subs: ${Math.round(throughput.eventsPerCpuS)} events/CPU-s, ${((rss - rss0) / bench.open / 1024).toFixed(1)} KiB/sub, p99 ${throughput.p99Ms.toFixed(1)} ms`,
    );
    if (n === BURST_AT) {
      result.burst = await bench.burst();
      log(`${target.name} ${bench.open} subs, bursts of ${BURST}: ${Math.round(result.burst.eventsPerCpuS)} events/CPU-s`);
    }
    if (n === LATENCY_AT) {
      result.latencySlow = await bench.fanout(LATENCY_EVENTS, 500);
      log(
        `${target.name} ${bench.open} subs at 2 events/s: p50 ${result.latencySlow.p50Ms.toFixed(2)} ms, p99 ${result.latencySlow.p99Ms.toFixed(2)} ms`,
      );
    }
  }
  await bench.closeAll();
  if (target.name === 'notify') {
    for (const layout of ['topics-100', 'topics-10000', 'wildcard'] as const) {
      await bench.connectTo(TOPIC_SWEEP_AT, layout);
      const throughput = await bench.fanout(Math.max(5, Math.ceil(DELIVERIES / TOPIC_SWEEP_AT)), 0);
      result.topics.push({ layout, ...throughput });
      log(`${target.name} ${layout}: ${Math.round(throughput.eventsPerCpuS)} events/CPU-s`);
      await bench.closeAll();
    }
  }
  await bench.connectTo(STORM, 'broadcast', { track: true });
  result.storm = await bench.storm();
  log(
    `${target.name} storm of ${STORM}: ${Math.round(result.storm.connectsPerCpuS)} connects/CPU-s, all connected in ${Math.round(result.storm.lastConnectedMs)} ms, resumed ${result.storm.resumed} (last at ${Math.round(result.storm.lastResumedMs)} ms), lost ${result.storm.lost}, duplicates ${result.storm.duplicates}`,
  );
  await bench.closeAll();
  return result;
}

/** Memory per idle subscriber over HTTPS/1.1 and over HTTP/2 (one connection each), notify and raw with the same certificate. */
async function measureTls(
  clients: LoadClient[],
  start: (tls: TlsFiles) => Promise<Target>,
  tls: TlsFiles,
): Promise<{ https: number; h2: number }> {
  const target = await start(tls);
  try {
    const bench = new Bench(clients, target);
    const perSubscriber: Record<'https' | 'h2', number> = { https: NaN, h2: NaN };
    for (const scheme of ['https', 'h2'] as const) {
      await bench.connectTo(100, 'broadcast', { scheme });
      await bench.closeAll();
      const rss0 = await bench.idleRss();
      await bench.connectTo(TLS_AT, 'broadcast', { scheme });
      const rss = await bench.idleRss();
      perSubscriber[scheme] = (rss - rss0) / Math.max(1, bench.open);
      log(`${target.name} over ${scheme}: ${bench.open} subs, ${(perSubscriber[scheme] / 1024).toFixed(1)} KiB/sub`);
      await bench.closeAll();
    }
    return perSubscriber;
  } finally {
    await target.stop();
  }
}

async function measureKoaPost(clients: LoadClient[], keySource: Target): Promise<{ perS: number; perCpuS: number }> {
  const { child, port } = await startNodeScript('koa-post.mjs', [keySource.signing!.keyFile, keySource.signing!.issuer]);
  try {
    const bench = new Bench(clients, {
      ...keySource,
      port,
      pids: () => [child.pid!],
    });
    await bench.publishRate(); // warm-up
    return await bench.publishRate();
  } finally {
    await stopChild(child);
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  spawnSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
  const started = Date.now();
  log(`building the server (npm run build)`);
  if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
  const withNchan = nchanAvailable();
  if (!withNchan) log('nchan is not installed (apt-get install nginx libnginx-mod-nchan): measuring without it');
  const wanted = (name: string) => ONLY === undefined || ONLY.has(name);
  if (ONLY === undefined || [...ONLY].some((name) => name !== 'store')) await compareServers(started, withNchan, wanted);
  if (wanted('store')) {
    log(`the store benchmark (bench/store-bench.ts, ${RUNS} round${RUNS === 1 ? '' : 's'})`);
    const store = spawnSync(process.execPath, ['--import', 'tsx', path.join(BENCH, 'store-bench.ts'), '--rounds', String(RUNS)], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    if (store.status !== 0) throw new Error('the store benchmark failed');
  }
}

/** raw `node:http`, notify and nchan side by side, in rotated order per run. */
async function compareServers(started: number, withNchan: boolean, wanted: (name: string) => boolean): Promise<void> {
  const clients = startClients();
  const runs: RunResult[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const starters: Array<() => Promise<Target>> = [];
      if (wanted('raw')) starters.push(() => startRaw());
      if (wanted('notify')) starters.push(() => startNotify());
      if (withNchan && wanted('nchan')) starters.push(startNchan);
      // Rotate the order each run so that drifting background load does not favour one server.
      const order = starters.map((_, i) => starters[(i + run) % starters.length]!);
      const servers: ServerResult[] = [];
      let publishBaseline;
      for (const start of order) {
        const target = await start();
        log(`run ${run + 1}/${RUNS}: ${target.label} on port ${target.port}`);
        try {
          servers.push(await measureServer(clients, target));
          if (target.name === 'notify') publishBaseline = await measureKoaPost(clients, target);
        } finally {
          await target.stop();
        }
      }
      const tls = makeCertificate();
      for (const server of servers) {
        if (server.name === 'notify') server.tls = await measureTls(clients, startNotify, tls);
        if (server.name === 'raw') server.tls = await measureTls(clients, startRaw, tls);
      }
      rmSync(path.dirname(tls.cert), { recursive: true, force: true });
      runs.push({ run: run + 1, servers, koaPost: publishBaseline });
      writeResults(runs, started, withNchan);
    }
  } finally {
    await Promise.all(clients.map((c) => c.call({ cmd: 'exit' }, 2000).catch(() => {})));
  }
  const { meta, stem } = writeResults(runs, started, withNchan);
  process.stdout.write(renderMarkdown(meta, summarise(runs)));
  if (!quick && ONLY === undefined) updateReadme(renderMarkdown(meta, summarise(runs)));
  log(`done in ${meta.minutes.toFixed(1)} min: bench/results/${stem}.{json,md,svg}`);
}

/** A full run of every server refreshes the table between the markers in the top-level README. */
function updateReadme(table: string): void {
  const file = path.join(ROOT, 'README.md');
  const text = readFileSync(file, 'utf8');
  const start = '<!-- bench:start -->';
  const end = '<!-- bench:end -->';
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from === -1 || to < from) return;
  writeFileSync(file, `${text.slice(0, from + start.length)}\n${table}${text.slice(to)}`);
}

/** Writes the results so far: a run cut short still leaves the finished runs behind. */
function writeResults(runs: RunResult[], started: number, withNchan: boolean) {
  const summary = summarise(runs);
  const meta = {
    date: new Date().toISOString(),
    commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).stdout?.toString().trim(),
    mode: quick ? 'quick' : 'full',
    runs: runs.length,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    nchan: withNchan,
    minutes: (Date.now() - started) / 60_000,
  };
  const outDir = path.join(BENCH, 'results');
  mkdirSync(outDir, { recursive: true });
  const stem = quick ? 'latest-quick' : 'latest';
  writeFileSync(path.join(outDir, `${stem}.json`), `${JSON.stringify({ meta, summary, runs }, null, 2)}\n`);
  writeFileSync(path.join(outDir, `${stem}.md`), renderMarkdown(meta, summary));
  writeFileSync(path.join(outDir, `${stem}.svg`), renderSvg(summary));
  return { meta, stem };
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
