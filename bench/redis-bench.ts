/**
 * Redis bus vs memory bus (issue 4), self-contained: starts its own redis-server (no persistence,
 * temporary directory, free loopback port) and its own server processes, opens SSE subscribers
 * from a separate load-client process, publishes, and measures what subscribers receive.
 *
 *   node --import tsx bench/redis-bench.ts                  # both scenarios, 3 runs each, medians
 *   node --import tsx bench/redis-bench.ts --runs 1 --subscribers 2000
 *   node --import tsx bench/redis-bench.ts --scale          # issue 13: 1/2/4 instances, one topic and per-user
 *                                                           # topics; publish latency on single, fsync, WAIT, Cluster
 *   ... --scale --compare-only --server-root DIR            # the same per-user fan-out on 4 instances of another checkout
 *   node --import tsx bench/redis-bench.ts --idle 100000    # idle subscribers on WORKERS workers + one broadcast
 *   node --import tsx bench/redis-bench.ts --idle 100000 --workers 7
 *
 * Scenarios: `memory` = 1 instance on the memory bus holding every subscriber; `redis` = 2
 * instances on the Redis bus holding half each (events published on the first). Two phases per
 * run: latency (events at a fixed rate; publish-to-deliver p50/p99 over every delivery) and
 * throughput (a burst published with bounded concurrency; deliveries per second until the last
 * one arrives). Loopback targets only; every loop is bounded in count and time. Results go to
 * bench/results/redis-<date>.json and .md.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileUserStore } from '../src/auth/file-user-store.js';
import { hashPassword } from '../src/auth/password.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const PASSWORD = 'bench-password-123';
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

// ---------------------------------------------------------------- load client (child process)

interface ClientJob {
  targets: Array<{ port: number; count: number }>;
  token: string;
  topic: string;
  /** One topic per connection, in order over all targets (per-user inboxes); else `topic` for all. */
  topics?: string[];
  localAddress?: string;
}

interface ClientReport {
  deliveries: number;
  firstAt: number;
  lastAt: number;
  p50: number;
  p99: number;
  max: number;
}

function runClient(): void {
  const sockets: net.Socket[] = [];
  let measuring = false;
  let latencies: number[] = [];
  let deliveries = 0;
  let firstAt = 0;
  let lastAt = 0;
  let connected = 0;

  const onFrame = (frame: string, at: number) => {
    const t = frame.indexOf('"t":');
    if (t < 0) {
      if (frame.includes('event: connected')) connected++;
      return;
    }
    if (!measuring) return;
    const end = frame.indexOf(',', t);
    latencies.push(at - Number(frame.slice(t + 4, end)));
    deliveries++;
    if (firstAt === 0) firstAt = at;
    lastAt = at;
  };

  const open = (job: ClientJob, port: number, topic: string) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: job.localAddress });
    socket.setNoDelay(true);
    let rest = '';
    let headersDone = false;
    socket.on('data', (chunk: Buffer) => {
      const at = now();
      rest += chunk.toString('latin1');
      if (!headersDone) {
        const end = rest.indexOf('\r\n\r\n');
        if (end < 0) return;
        headersDone = true;
        rest = rest.slice(end + 4);
      }
      // Chunked transfer framing lines sit between SSE frames; they contain no `"t":`, so frames are found by `\n\n`.
      let cut: number;
      while ((cut = rest.indexOf('\n\n')) >= 0) {
        onFrame(rest.slice(0, cut), at);
        rest = rest.slice(cut + 2);
      }
    });
    socket.on('error', () => undefined);
    socket.write(
      `GET /events?topic=${encodeURIComponent(topic)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${job.token}\r\n\r\n`,
    );
    sockets.push(socket);
  };

  process.on('message', async (message: { cmd: string; job?: ClientJob }) => {
    if (message.cmd === 'open') {
      const job = message.job!;
      let expected = 0;
      for (const target of job.targets) {
        for (let i = 0; i < target.count; i++) {
          open(job, target.port, job.topics?.[expected] ?? job.topic);
          expected++;
          // Ramp: 250 connections, then let the servers accept them (listen backlog is 511).
          if (expected % 250 === 0) {
            const deadline = Date.now() + 10_000;
            while (connected < expected - 50 && Date.now() < deadline) await sleep(5);
          }
        }
      }
      const deadline = Date.now() + 120_000;
      while (connected < expected && Date.now() < deadline) await sleep(20);
      process.send!({ cmd: 'opened', connected, expected });
    } else if (message.cmd === 'measure') {
      latencies = [];
      deliveries = 0;
      firstAt = lastAt = 0;
      measuring = true;
      process.send!({ cmd: 'measuring' });
    } else if (message.cmd === 'report') {
      measuring = false;
      latencies.sort((x, y) => x - y);
      const pick = (q: number) =>
        latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
      const report: ClientReport = { deliveries, firstAt, lastAt, p50: pick(0.5), p99: pick(0.99), max: latencies.at(-1) ?? NaN };
      process.send!({ cmd: 'report', report });
    } else if (message.cmd === 'count') {
      process.send!({ cmd: 'count', deliveries, lastAt });
    } else if (message.cmd === 'exit') {
      for (const socket of sockets) socket.destroy();
      process.exit(0);
    }
  });
  process.send!({ cmd: 'ready' });
}

class Client {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<Client> {
    const child = fork(SELF, ['--client'], {
      execArgv: ['--import', 'tsx', '--max-old-space-size=4096'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const client = new Client(child);
    await client.next('ready', 20_000);
    return client;
  }

  get pid(): number {
    return this.child.pid!;
  }

  next<T>(cmd: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load client: no ${cmd} in ${timeoutMs} ms`)), timeoutMs);
      const listener = (message: { cmd: string }) => {
        if (message.cmd !== cmd) return;
        clearTimeout(timer);
        this.child.off('message', listener);
        resolve(message as T);
      };
      this.child.on('message', listener);
    });
  }

  async call<T>(cmd: string, reply: string, extra: object = {}, timeoutMs = 120_000): Promise<T> {
    const answer = this.next<T>(reply, timeoutMs);
    this.child.send({ cmd, ...extra });
    return answer;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ cmd: 'exit' });
    await Promise.race([exited, sleep(5000)]);
    this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------- servers

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Proc {
  readonly child: ChildProcess;
  readonly port: number;
  stop(): Promise<void>;
}

async function startRedis(dir: string, extra: string[] = []): Promise<Proc> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--dbfilename',
      `dump-${port}.rdb`,
      '--save',
      '',
      '--appendonly',
      'no',
      ...extra,
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) break;
    await sleep(50);
  }
  return { child, port, stop: () => stopProc(child) };
}

async function stopProc(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  child.kill('SIGKILL');
}

/** The checkout whose server is measured (`--server-root DIR`: e.g. a worktree of an older commit, to compare designs). */
const SERVER_ROOT = (() => {
  const at = process.argv.indexOf('--server-root');
  return at >= 0 ? path.resolve(process.argv[at + 1]!) : ROOT;
})();

async function startServer(env: Record<string, string>, listeners = 1, built = false): Promise<Proc> {
  const port = env.PORT !== undefined && env.PORT !== '0' ? Number(env.PORT) : await freePort();
  // The idle run measures memory, so it runs the built server (`dist/`), as in production, not through tsx.
  const entry = built ? [path.join(SERVER_ROOT, 'dist', 'main.js')] : ['--import', 'tsx', path.join(SERVER_ROOT, 'src/main.ts')];
  const child = spawn(process.execPath, entry, {
    cwd: SERVER_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let seen = 0;
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('server did not start in 60 s'));
    }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        if (buffered.slice(0, newline).includes('"listening"') && ++seen === listeners) {
          clearTimeout(timer);
          resolve();
        }
        buffered = buffered.slice(newline + 1);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  child.stdout.resume();
  return { child, port, stop: () => stopProc(child) };
}

async function login(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'bench', password: PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function publish(port: number, token: string, topic: string, k: number): Promise<number> {
  // Retried (a kept-alive connection the server just closed resets): the idempotency key makes a retry safe.
  const key = `${topic.replace(/\//g, '.')}-${k}-${randomBytes(4).toString('hex')}`;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: `{"topics":["${topic}"],"idempotencyKey":"${key}","data":{"t":${now().toFixed(3)},"k":${k}}}`,
      });
      if (res.status !== 201 && res.status !== 200) throw new Error(`publish: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      return attempt;
    } catch (error) {
      if (attempt >= 3 || !(error instanceof TypeError)) throw error;
    }
  }
}

async function prepareDataDir(): Promise<string> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'notify-bench-'));
  const store = new FileUserStore({ file: path.join(dataDir, 'users.json') });
  await store.add({ name: 'bench', kind: 'user', roles: ['admin'], passwordHash: await hashPassword(PASSWORD, { logN: 10 }) });
  await store.close();
  return dataDir;
}

function baseEnv(dataDir: string, secret: string): Record<string, string> {
  return {
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    JWT_ALG: 'HS256',
    JWT_SECRET: secret,
    JWT_ISSUER: 'http://notify.bench',
    ACCESS_TOKEN_TTL: '3600',
    LOG_LEVEL: 'info', // the `listening` line tells the port is open; nothing is logged per event
    MAX_STREAMS_PER_USER: '100000',
    MAX_STREAMS: '100000',
    SHUTDOWN_GRACE: '2',
    HEARTBEAT_INTERVAL: '15',
  };
}

/** Resident memory (kB) of a process, from /proc. */
function rssKb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- one run

interface RunResult {
  scenario: 'memory' | 'redis';
  subscribers: number;
  latencyEvents: number;
  latencyDeliveries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  burstEvents: number;
  burstDeliveries: number;
  deliveredPerSecond: number;
}

async function run(
  scenario: 'memory' | 'redis',
  subscribers: number,
  rate: number,
  latencyEvents: number,
  burst: number,
): Promise<RunResult> {
  const dataDir = await prepareDataDir();
  const secret = randomBytes(32).toString('hex');
  const redisDir = mkdtempSync(path.join(os.tmpdir(), 'notify-bench-redis-'));
  const procs: Proc[] = [];
  let client: Client | undefined;
  try {
    let targets: Array<{ port: number; count: number }>;
    if (scenario === 'memory') {
      const server = await startServer(baseEnv(dataDir, secret));
      procs.push(server);
      targets = [{ port: server.port, count: subscribers }];
    } else {
      const redis = await startRedis(redisDir);
      procs.push(redis);
      const env = { ...baseEnv(dataDir, secret), REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_KEY_PREFIX: 'bench:' };
      const servers = await Promise.all([startServer(env), startServer(env)]);
      procs.push(...servers);
      targets = servers.map((server) => ({ port: server.port, count: subscribers / 2 }));
    }
    const publishPort = targets[0]!.port;
    const token = await login(publishPort);
    client = await Client.start();
    const opened = await client.call<{ connected: number; expected: number }>('open', 'opened', {
      job: { targets, token, topic: 'bench/**' },
    });
    if (opened.connected !== opened.expected) throw new Error(`only ${opened.connected} of ${opened.expected} subscribers connected`);
    await sleep(500);

    // Latency: a fixed rate, far below capacity.
    await client.call('measure', 'measuring');
    for (let k = 0; k < latencyEvents; k++) {
      const started = performance.now();
      await publish(publishPort, token, 'bench/latency', k);
      const wait = 1000 / rate - (performance.now() - started);
      if (wait > 0) await sleep(wait);
    }
    await waitForDeliveries(client, latencyEvents * subscribers, 30_000);
    const latency = (await client.call<{ report: ClientReport }>('report', 'report')).report;

    // Throughput: a burst with 16 publishes in flight; deliveries per second until the last arrives.
    await client.call('measure', 'measuring');
    const burstStart = now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < burst) await publish(publishPort, token, 'bench/burst', next++);
      }),
    );
    await waitForDeliveries(client, burst * subscribers, 120_000);
    const thr = (await client.call<{ report: ClientReport }>('report', 'report')).report;
    return {
      scenario,
      subscribers,
      latencyEvents,
      latencyDeliveries: latency.deliveries,
      p50Ms: round(latency.p50),
      p99Ms: round(latency.p99),
      maxMs: round(latency.max),
      burstEvents: burst,
      burstDeliveries: thr.deliveries,
      deliveredPerSecond: Math.round(thr.deliveries / ((thr.lastAt - burstStart) / 1000)),
    };
  } finally {
    await client?.stop();
    for (const proc of procs.reverse()) await proc.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(redisDir, { recursive: true, force: true });
  }
}

async function waitForDeliveries(client: Client, expected: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let stalled = 0;
  while (Date.now() < deadline) {
    const { deliveries } = await client.call<{ deliveries: number }>('count', 'count');
    if (deliveries >= expected) return;
    // No progress for 3 s: something was cut off (a slow consumer); report what arrived.
    stalled = deliveries === last ? stalled + 1 : 0;
    if (stalled >= 30) return;
    last = deliveries;
    await sleep(100);
  }
}

const round = (value: number) => Math.round(value * 100) / 100;
const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

// ---------------------------------------------------------------- 50,000 idle subscribers

/**
 * `total` idle authenticated subscribers on one machine (issue 12: 100,000): one server with
 * `workers` processes on the Redis bus (each holds fewer than the ~20,000 open files a process
 * may have), load clients of at most 16,667 connections each from their own loopback source
 * address, then one broadcast that must reach all of them. Bounded: opening is given 5 minutes,
 * the broadcast 60 s, the whole run 15 minutes, after which it stops by itself.
 */
async function idle(total: number, workers: number): Promise<Record<string, unknown>> {
  if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
  const dataDir = await prepareDataDir();
  const secret = randomBytes(32).toString('hex');
  const redisDir = mkdtempSync(path.join(os.tmpdir(), 'notify-bench-redis-'));
  const clients: Client[] = [];
  const procs: Proc[] = [];
  try {
    const redis = await startRedis(redisDir);
    procs.push(redis);
    const port = await freePort();
    const server = await startServer(
      {
        ...baseEnv(dataDir, secret),
        REDIS_URL: `redis://127.0.0.1:${redis.port}`,
        REDIS_KEY_PREFIX: 'bench:',
        WORKERS: String(workers),
        PORT: String(port),
        HEARTBEAT_INTERVAL: '30',
      },
      workers,
      true,
    );
    procs.push(server);
    const workerPids = childPids(server.child.pid!);
    const memory = () => [server.child.pid!, ...workerPids].reduce((sum, pid) => sum + rssKb(pid), 0);
    const token = await login(port);
    await sleep(1000);
    const before = memory();
    // Load clients: at most 16,667 connections each (a process may hold ~20,000 files), each from its own source address.
    const perClient = 16_667;
    const parts = Math.ceil(total / perClient);
    const started = now();
    for (let i = 0; i < parts; i++) clients.push(await Client.start());
    const opened = await Promise.all(
      clients.map((client, i) =>
        client.call<{ connected: number; expected: number }>(
          'open',
          'opened',
          {
            job: {
              targets: [{ port, count: Math.min(perClient, total - i * perClient) }],
              token,
              topic: 'bench/**',
              localAddress: `127.0.0.${2 + i}`,
            },
          },
          600_000, // 100,000 connections ramped 250 at a time on a shared 2-CPU machine take minutes
        ),
      ),
    );
    const connectSeconds = (now() - started) / 1000;
    const connected = opened.reduce((sum, o) => sum + o.connected, 0);
    await sleep(3000);
    const after = memory();
    for (const client of clients) await client.call('measure', 'measuring');
    const sent = now();
    await publish(port, token, 'bench/broadcast', 0);
    const deadline = Date.now() + 60_000;
    let received = 0;
    let lastAt = 0;
    while (Date.now() < deadline) {
      const counts = await Promise.all(clients.map((client) => client.call<{ deliveries: number; lastAt: number }>('count', 'count')));
      received = counts.reduce((sum, c) => sum + c.deliveries, 0);
      lastAt = Math.max(...counts.map((c) => c.lastAt));
      if (received >= connected) break;
      await sleep(50);
    }
    return {
      subscribers: total,
      connected,
      workers,
      loadClients: parts,
      connectSeconds: round(connectSeconds),
      serverRssBeforeMb: round(before / 1024),
      serverRssAfterMb: round(after / 1024),
      memoryPerSubscriberKb: round((after - before) / connected),
      broadcastReceived: received,
      broadcastToLastMs: round(lastAt - sent),
    };
  } finally {
    for (const client of clients) await client.stop();
    for (const proc of procs.reverse()) await proc.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(redisDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- scale-out, latency and durability (issue 13)

/** CPU time (ms) a process has used so far, from /proc/PID/stat (utime + stime, 100 ticks per second). */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

interface ScaleResult {
  shape: 'one topic' | 'per-user topics';
  instances: number;
  subscribers: number;
  events: number;
  deliveries: number;
  deliveredPerSecond: number;
  /** Server CPU (all instances) per delivered event, in microseconds. */
  cpuUsPerDelivery: number;
}

/** Fan-out with N instances sharing the subscribers evenly; events published through the first. */
async function scaleRun(
  shape: ScaleResult['shape'],
  instances: number,
  subscribers: number,
  extraEnv: Record<string, string>,
  perUserEvents = subscribers * 2,
): Promise<ScaleResult> {
  const dataDir = await prepareDataDir();
  const secret = randomBytes(32).toString('hex');
  const redisDir = mkdtempSync(path.join(os.tmpdir(), 'notify-bench-redis-'));
  const procs: Proc[] = [];
  let client: Client | undefined;
  try {
    const redis = await startRedis(redisDir);
    procs.push(redis);
    const env = { ...baseEnv(dataDir, secret), REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_KEY_PREFIX: 'bench:', ...extraEnv };
    const servers = await Promise.all(Array.from({ length: instances }, () => startServer(env)));
    procs.push(...servers);
    const targets = servers.map((server) => ({ port: server.port, count: subscribers / instances }));
    const token = await login(servers[0]!.port);
    client = await Client.start();
    const topics = shape === 'one topic' ? undefined : Array.from({ length: subscribers }, (_, i) => `bench/u/${i}`);
    const opened = await client.call<{ connected: number; expected: number }>('open', 'opened', {
      job: { targets, token, topic: 'bench/one', topics },
    });
    if (opened.connected !== opened.expected) throw new Error(`only ${opened.connected} of ${opened.expected} subscribers connected`);
    await sleep(1000);
    const events = shape === 'one topic' ? 40 : perUserEvents;
    const expected = shape === 'one topic' ? events * subscribers : events;
    await client.call('measure', 'measuring');
    const cpuBefore = servers.reduce((sum, server) => sum + cpuMs(server.child.pid!), 0);
    const start = now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < events) {
          const k = next++;
          await publish(servers[0]!.port, token, shape === 'one topic' ? 'bench/one' : `bench/u/${k % subscribers}`, k);
        }
      }),
    );
    await waitForDeliveries(client, expected, 120_000);
    const report = (await client.call<{ report: ClientReport }>('report', 'report')).report;
    const cpu = servers.reduce((sum, server) => sum + cpuMs(server.child.pid!), 0) - cpuBefore;
    return {
      shape,
      instances,
      subscribers,
      events,
      deliveries: report.deliveries,
      deliveredPerSecond: Math.round(report.deliveries / ((report.lastAt - start) / 1000)),
      cpuUsPerDelivery: round((cpu * 1000) / report.deliveries),
    };
  } finally {
    await client?.stop();
    for (const proc of procs.reverse()) await proc.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(redisDir, { recursive: true, force: true });
  }
}

type Store = 'single' | 'appendfsync always' | 'WAIT 1 (one replica)' | 'cluster (3 primaries)';

/** Publish round trips (HTTP answer) on one instance with one subscriber, sequentially: p50/p99. */
async function latencyRun(store: Store, publishes: number): Promise<{ store: Store; p50Ms: number; p99Ms: number }> {
  const dataDir = await prepareDataDir();
  const secret = randomBytes(32).toString('hex');
  const redisDir = mkdtempSync(path.join(os.tmpdir(), 'notify-bench-redis-'));
  const procs: Proc[] = [];
  try {
    let url: string;
    const extra: Record<string, string> = {};
    if (store === 'cluster (3 primaries)') {
      const nodes = [];
      for (let i = 0; i < 3; i++) {
        const node = await startRedis(redisDir, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`]);
        procs.push(node);
        nodes.push(node.port);
      }
      const create = spawn(
        'redis-cli',
        ['--cluster', 'create', ...nodes.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
        {
          stdio: 'ignore',
        },
      );
      await new Promise((resolve) => create.once('exit', resolve));
      await sleep(2000);
      url = `redis+cluster://${nodes.map((port) => `127.0.0.1:${port}`).join(',')}`;
    } else {
      const primary = await startRedis(redisDir, store === 'appendfsync always' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : []);
      procs.push(primary);
      url = `redis://127.0.0.1:${primary.port}`;
      if (store === 'WAIT 1 (one replica)') {
        const replica = await startRedis(redisDir, ['--replicaof', '127.0.0.1', String(primary.port)]);
        procs.push(replica);
        // Until the replica is in sync, WAIT 1 cannot succeed.
        for (let i = 0; i < 100; i++) {
          const info = await new Promise<string>((resolve) => {
            const cli = spawn('redis-cli', ['-p', String(replica.port), 'info', 'replication']);
            let out = '';
            cli.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
            cli.once('exit', () => resolve(out));
          });
          if (info.includes('master_link_status:up')) break;
          await sleep(100);
        }
        extra.REDIS_WAIT_REPLICAS = '1';
      }
    }
    const server = await startServer({ ...baseEnv(dataDir, secret), REDIS_URL: url, REDIS_KEY_PREFIX: 'bench:', ...extra });
    procs.push(server);
    const token = await login(server.port);
    const times: number[] = [];
    for (let k = 0; k < publishes + 20; k++) {
      const started = performance.now();
      await publish(server.port, token, `bench/lat/${k % 50}`, k);
      if (k >= 20) times.push(performance.now() - started); // the first 20 warm up
    }
    times.sort((x, y) => x - y);
    return { store, p50Ms: round(times[Math.floor(times.length * 0.5)]!), p99Ms: round(times[Math.floor(times.length * 0.99)]!) };
  } finally {
    for (const proc of procs.reverse()) await proc.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(redisDir, { recursive: true, force: true });
  }
}

async function scaleMain(resultsDir: string, stamp: string, machine: Record<string, unknown>): Promise<void> {
  const runs = arg('runs', 3);
  const subscribers = arg('subscribers', 1000);
  const publishes = arg('publishes', 300);
  const partitions = arg('partitions', 16);
  const compareOnly = process.argv.includes('--compare-only');
  const env = { REDIS_PARTITIONS: String(partitions) };
  const loadBefore = os.loadavg();
  const scale: ScaleResult[] = [];
  const latency: Array<{ store: Store; p50Ms: number; p99Ms: number }> = [];
  for (let i = 0; i < runs; i++) {
    for (const shape of ['one topic', 'per-user topics'] as const) {
      for (const instances of compareOnly ? [4] : [1, 2, 4]) {
        if (compareOnly && shape === 'one topic') continue;
        const result = await scaleRun(shape, instances, subscribers, env, arg('per-user-events', subscribers * 2));
        console.log(JSON.stringify(result));
        scale.push(result);
      }
    }
    if (compareOnly) continue;
    for (const store of ['single', 'appendfsync always', 'WAIT 1 (one replica)', 'cluster (3 primaries)'] as const) {
      const result = await latencyRun(store, publishes);
      console.log(JSON.stringify(result));
      latency.push(result);
    }
  }
  const loadAfter = os.loadavg();
  const med = (shape: string, instances: number, pick: (r: ScaleResult) => number) =>
    median(scale.filter((r) => r.shape === shape && r.instances === instances).map(pick));
  const report = {
    machine,
    serverRoot: SERVER_ROOT,
    settings: { runs, subscribers, publishes, partitions },
    loadAverage: { before: loadBefore, after: loadAfter },
    scale,
    latency,
  };
  const name = compareOnly ? `redis-scale-compare-${stamp}` : `redis-scale-${stamp}`;
  writeFileSync(path.join(resultsDir, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  const lines = [
    `# Redis scale-out${compareOnly ? ' (4 instances, per-user topics only)' : ''} (${stamp})`,
    '',
    `Machine: ${String(machine.cpus)} CPUs, shared with other work: load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(1)).join(' ')} after. Servers, redis-server and the load client share the CPUs.`,
    `Server: ${SERVER_ROOT === ROOT ? 'this checkout' : SERVER_ROOT}. Command: \`node --import tsx bench/redis-bench.ts --scale --runs ${runs} --subscribers ${subscribers} --publishes ${publishes} --partitions ${partitions} --per-user-events ${arg('per-user-events', subscribers * 2)}${compareOnly ? ' --compare-only' : ''}${SERVER_ROOT === ROOT ? '' : ` --server-root ${SERVER_ROOT}`}\``,
    '',
    `Medians of ${runs} runs; ratios from the medians of the same run set. One topic: 40 events to all ${subscribers} subscribers. Per-user topics: ${arg('per-user-events', subscribers * 2)} events, each to the one subscriber of its inbox; subscribers spread evenly over the instances, events published through the first.`,
    '',
    '| shape | instances | delivered events/s | server CPU per delivered event (µs) | delivered/s vs 1 instance |',
    '|---|---|---|---|---|',
  ];
  for (const shape of ['one topic', 'per-user topics']) {
    for (const instances of [1, 2, 4]) {
      if (!scale.some((r) => r.shape === shape && r.instances === instances)) continue;
      const rate = med(shape, instances, (r) => r.deliveredPerSecond);
      const base = scale.some((r) => r.shape === shape && r.instances === 1) ? med(shape, 1, (r) => r.deliveredPerSecond) : NaN;
      lines.push(`| ${shape} | ${instances} | ${rate} | ${med(shape, instances, (r) => r.cpuUsPerDelivery)} | ${round(rate / base)} |`);
    }
  }
  if (latency.length > 0) {
    lines.push(
      '',
      `Publish round trip (HTTP answer), ${publishes} sequential publishes on one instance:`,
      '',
      '| Redis | p50 (ms) | p99 (ms) |',
      '|---|---|---|',
    );
    for (const store of ['single', 'appendfsync always', 'WAIT 1 (one replica)', 'cluster (3 primaries)'] as const) {
      const mine = latency.filter((r) => r.store === store);
      lines.push(`| ${store} | ${median(mine.map((r) => r.p50Ms))} | ${median(mine.map((r) => r.p99Ms))} |`);
    }
  }
  lines.push('');
  writeFileSync(path.join(resultsDir, `${name}.md`), lines.join('\n'));
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const resultsDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGb: round(os.totalmem() / 2 ** 30), node: process.version };

  if (process.argv.includes('--scale')) {
    await scaleMain(resultsDir, stamp, machine);
    return;
  }
  const idleCount = arg('idle', 0);
  if (idleCount > 0) {
    const workers = arg('workers', Math.max(3, Math.ceil(idleCount / 17_000)));
    // Stops by itself: whatever happens, the run ends within 15 minutes.
    setTimeout(() => {
      console.error('the idle run took longer than 15 minutes: stopping');
      process.exit(2);
    }, 15 * 60_000).unref();
    const load = () => os.loadavg()[0]!.toFixed(2);
    const loadBefore = load();
    const result = { machine, loadBefore, ...(await idle(idleCount, workers)), loadAfter: load() };
    console.log(JSON.stringify(result, null, 2));
    writeFileSync(path.join(resultsDir, `redis-idle-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(path.join(resultsDir, `redis-idle-${stamp}.md`), idleReport(stamp, result));
    return;
  }

  const runs = arg('runs', 3);
  const subscribers = arg('subscribers', 10_000);
  const rate = arg('rate', 20);
  const latencyEvents = arg('events', 100);
  const burst = arg('burst', 200);
  const all: RunResult[] = [];
  for (let i = 0; i < runs; i++) {
    for (const scenario of ['memory', 'redis'] as const) {
      const result = await run(scenario, subscribers, rate, latencyEvents, burst);
      console.log(JSON.stringify(result));
      all.push(result);
    }
  }
  const summary = (scenario: 'memory' | 'redis') => {
    const mine = all.filter((r) => r.scenario === scenario);
    return {
      p50Ms: median(mine.map((r) => r.p50Ms)),
      p99Ms: median(mine.map((r) => r.p99Ms)),
      deliveredPerSecond: median(mine.map((r) => r.deliveredPerSecond)),
    };
  };
  const memory = summary('memory');
  const redis = summary('redis');
  const report = { machine, settings: { runs, subscribers, rate, latencyEvents, burst }, medians: { memory, redis }, runs: all };
  writeFileSync(path.join(resultsDir, `redis-${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`);
  const md = [
    `# Redis bus vs memory bus (${stamp})`,
    '',
    `Machine: ${machine.cpus} CPUs (${machine.cpu}), ${machine.memoryGb} GB, Node ${machine.node}. Servers, redis-server and the load client share these CPUs.`,
    `Command: \`node --import tsx bench/redis-bench.ts --runs ${runs} --subscribers ${subscribers} --rate ${rate} --events ${latencyEvents} --burst ${burst}\``,
    '',
    `| | subscribers | p50 latency (ms) | p99 latency (ms) | delivered events/s (burst of ${burst}) |`,
    '|---|---|---|---|---|',
    `| memory bus, 1 instance | ${subscribers} | ${memory.p50Ms} | ${memory.p99Ms} | ${memory.deliveredPerSecond} |`,
    `| Redis bus, 2 instances | 2 × ${subscribers / 2} | ${redis.p50Ms} | ${redis.p99Ms} | ${redis.deliveredPerSecond} |`,
    '',
    `Medians of ${runs} runs. Latency: ${latencyEvents} events at ${rate}/s, every delivery measured (publish sent to frame read by the client). Redis p99 / memory p99 = ${round(redis.p99Ms / memory.p99Ms)}.`,
    '',
  ].join('\n');
  writeFileSync(path.join(resultsDir, `redis-${stamp}.md`), md);
  console.log(md);
}

function idleReport(stamp: string, r: Record<string, any>): string {
  return [
    `# ${Number(r.subscribers).toLocaleString('en-US')} idle authenticated subscribers on one machine (${stamp})`,
    '',
    `Command: \`node --import tsx bench/redis-bench.ts --idle ${r.subscribers} --workers ${r.workers}\``,
    '',
    `Setup: its own redis-server (no persistence) and one server (\`node dist/main.js\`) with \`WORKERS=${r.workers}\` on the`,
    `Redis bus (node:cluster, one port); ${r.loadClients} load-client processes of at most 16,667 SSE connections each (under the`,
    '~20,000 open files a process may hold), each from its own source address (127.0.0.2, 127.0.0.3, ...); every connection',
    'authenticated with a bearer token and subscribed to `bench/**`. Then one event published to `bench/broadcast`.',
    '',
    '| | |',
    '|---|---|',
    `| subscribers connected | ${Number(r.connected).toLocaleString('en-US')} of ${Number(r.subscribers).toLocaleString('en-US')} |`,
    `| time to open them all | ${r.connectSeconds} s (ramped 250 at a time per client) |`,
    `| server RSS (primary + ${r.workers} workers) | ${r.serverRssBeforeMb} MB before, ${r.serverRssAfterMb} MB after |`,
    `| memory per subscriber | ${r.memoryPerSubscriberKb} KB |`,
    `| one broadcast event received by | ${Number(r.broadcastReceived).toLocaleString('en-US')} of ${Number(r.connected).toLocaleString('en-US')} |`,
    `| publish to last delivery | ${(r.broadcastToLastMs / 1000).toFixed(2)} s |`,
    `| load average (1 min) before / after | ${r.loadBefore} / ${r.loadAfter} (the machine is shared with other sessions) |`,
    '',
    `Machine: ${r.machine.cpus} CPUs (${r.machine.cpu}), ${r.machine.memoryGb} GB, Node ${r.machine.node}; servers, Redis and load clients share the CPUs.`,
    '',
  ].join('\n');
}

if (process.argv.includes('--client')) runClient();
else
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
