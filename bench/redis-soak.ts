/**
 * Churn and soak on Redis (issue 13), bounded: its own redis-server (loopback, temporary
 * directory), two server instances, load clients holding SUBSCRIBERS streams that each live a
 * random 10-30 s and reconnect (with Last-Event-ID, so every reconnect also replays), while
 * events are published at RATE per second. After DURATION the clients leave and the soak watches
 * for SETTLE more seconds. Every 10 s it samples, per instance, open streams (/metrics), file
 * descriptors and resident memory, and in Redis the key count and used memory. Growth shows as a
 * difference between the samples before the clients came and after they left.
 *
 *   node --import tsx bench/redis-soak.ts                       # 600 s, 5000 subscribers, 5 events/s
 *   node --import tsx bench/redis-soak.ts --duration 60 --subscribers 500
 *
 * Not part of `npm test`. Results: bench/results/redis-soak-<date>.json and .md.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { FileUserStore } from '../src/auth/file-user-store.js';
import { hashPassword } from '../src/auth/password.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const PASSWORD = 'soak-password-123';
const METRICS_TOKEN = randomBytes(24).toString('base64url');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};

// ---------------------------------------------------------------- load client (child process)

interface ClientJob {
  ports: number[];
  token: string;
  count: number;
  first: number;
  localAddress: string;
}

function runClient(): void {
  let stopping = false;
  let open = 0;
  let connects = 0;
  let events = 0;
  const sockets = new Set<net.Socket>();
  const connect = (job: ClientJob, index: number, lastEventId: string | undefined) => {
    if (stopping) return;
    const port = job.ports[(index + connects) % job.ports.length]!;
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: job.localAddress });
    sockets.add(socket);
    connects++;
    open++;
    let last = lastEventId;
    let rest = '';
    socket.on('data', (chunk: Buffer) => {
      rest += chunk.toString('latin1');
      let cut: number;
      while ((cut = rest.indexOf('\n\n')) >= 0) {
        const frame = rest.slice(0, cut);
        rest = rest.slice(cut + 2);
        const id = /(?:^|\n)id: ([0-9-]+)/.exec(frame)?.[1];
        if (id !== undefined && frame.includes('event: tick')) {
          last = id;
          events++;
        }
      }
    });
    const lifetime = 10_000 + Math.random() * 20_000;
    const timer = setTimeout(() => socket.destroy(), lifetime);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      sockets.delete(socket);
      open--;
      if (!stopping) setTimeout(() => connect(job, index, last), Math.random() * 500);
    });
    const topic = `soak/u/${(job.first + index) % 500}`;
    const query = `topic=${encodeURIComponent(topic)}&topic=${encodeURIComponent('soak/all')}`;
    const resume = last === undefined ? '' : `Last-Event-ID: ${last}\r\n`;
    socket.write(
      `GET /events?${query} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${job.token}\r\n${resume}\r\n`,
    );
  };
  process.on('message', async (message: { cmd: string; job?: ClientJob }) => {
    if (message.cmd === 'start') {
      const job = message.job!;
      for (let i = 0; i < job.count; i++) {
        connect(job, i, undefined);
        if (i % 200 === 199) await sleep(200);
      }
      process.send!({ cmd: 'started' });
    } else if (message.cmd === 'stats') {
      process.send!({ cmd: 'stats', open, connects, events });
    } else if (message.cmd === 'leave') {
      stopping = true;
      for (const socket of sockets) socket.destroy();
      process.send!({ cmd: 'left' });
    }
  });
  process.send!({ cmd: 'ready' });
}

function startClient(): Promise<ChildProcess> {
  const child = fork(SELF, ['--client'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

function ask<T>(child: ChildProcess, cmd: string, reply: string, extra: object = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client: no ${reply}`)), 120_000);
    const listener = (message: { cmd: string }) => {
      if (message.cmd !== reply) return;
      clearTimeout(timer);
      child.off('message', listener);
      resolve(message as T);
    };
    child.on('message', listener);
    child.send({ cmd, ...extra });
  });
}

// ---------------------------------------------------------------- servers and samples

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('"listening"')) resolve();
      if (buffered.length > 100_000) buffered = buffered.slice(-1000);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, port };
}

const fds = (pid: number) => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
};
const rssMb = (pid: number) => {
  try {
    return Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 102.4) / 10;
  } catch {
    return NaN;
  }
};

/** Open streams and live JS heap (MB, what the last GC kept: unlike RSS, it falls back when load goes) from /metrics. */
async function serverMetrics(port: number): Promise<{ openStreams: number; heapMb: number }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  const text = await res.text();
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? NaN);
  return { openStreams: value('notify_open_streams'), heapMb: Math.round(value('notify_nodejs_heap_size_used_bytes') / 104857.6) / 10 };
}

interface Sample {
  t: number;
  phase: 'before' | 'churn' | 'after';
  openStreams: number[];
  heapMb: number[];
  fds: number[];
  rssMb: number[];
  redisKeys: number;
  redisMemoryMb: number;
  clientOpen: number;
  connects: number;
  published: number;
}

async function main(): Promise<void> {
  const durationS = arg('duration', 600);
  const subscribers = arg('subscribers', 5000);
  const rate = arg('rate', 5);
  const settleS = arg('settle', 90);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'notify-soak-'));
  const redisDir = mkdtempSync(path.join(os.tmpdir(), 'notify-soak-redis-'));
  const store = new FileUserStore({ file: path.join(dataDir, 'users.json') });
  await store.add({ name: 'soak', kind: 'user', roles: ['admin'], passwordHash: await hashPassword(PASSWORD, { logN: 10 }) });
  await store.close();
  const redisPort = await freePort();
  const redisProcess = spawn(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', redisDir, '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  await sleep(500);
  const redis = new Redis(redisPort, '127.0.0.1');
  const env = {
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    JWT_ALG: 'HS256',
    JWT_SECRET: randomBytes(32).toString('hex'),
    JWT_ISSUER: 'http://notify.soak',
    ACCESS_TOKEN_TTL: '3600',
    LOG_LEVEL: 'info', // the `listening` line gives the port; nothing is logged per event
    MAX_STREAMS_PER_USER: '100000',
    METRICS: 'token',
    METRICS_TOKEN,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    REDIS_KEY_PREFIX: 'soak:',
  };
  const servers = await Promise.all([startServer(env), startServer(env)]);
  const clients: ChildProcess[] = [];
  const samples: Sample[] = [];
  let published = 0;
  let stats = { open: 0, connects: 0 };
  const started = Date.now();
  let phase: Sample['phase'] = 'before';
  const sample = async () => {
    const info = await redis.info('memory');
    const metrics = await Promise.all(servers.map((server) => serverMetrics(server.port)));
    samples.push({
      t: Math.round((Date.now() - started) / 1000),
      phase,
      openStreams: metrics.map((m) => m.openStreams),
      heapMb: metrics.map((m) => m.heapMb),
      fds: servers.map((server) => fds(server.child.pid!)),
      rssMb: servers.map((server) => rssMb(server.child.pid!)),
      redisKeys: await redis.dbsize(),
      redisMemoryMb: Math.round(Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / 104857.6) / 10,
      clientOpen: stats.open,
      connects: stats.connects,
      published,
    });
    console.log(JSON.stringify(samples.at(-1)));
  };
  try {
    const login = await fetch(`http://127.0.0.1:${servers[0].port}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'soak', password: PASSWORD }),
    });
    const token = ((await login.json()) as { access_token: string }).access_token;
    await sleep(2000);
    await sample();
    await sleep(10_000);
    await sample();

    phase = 'churn';
    const perClient = 2500;
    for (let i = 0; i * perClient < subscribers; i++) {
      const child = await startClient();
      clients.push(child);
      const job: ClientJob = {
        ports: servers.map((server) => server.port),
        token,
        count: Math.min(perClient, subscribers - i * perClient),
        first: i * perClient,
        localAddress: `127.0.0.${2 + i}`,
      };
      await ask(child, 'start', 'started', { job });
    }
    const churnEnd = Date.now() + durationS * 1000;
    const publisher = (async () => {
      let k = 0;
      while (Date.now() < churnEnd) {
        const at = Date.now();
        const topic = k % 2 === 0 ? 'soak/all' : `soak/u/${k % 500}`;
        const res = await fetch(`http://127.0.0.1:${servers[k % 2]!.port}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ topics: [topic], type: 'tick', data: { k } }),
        }).catch(() => undefined);
        if (res?.status === 201) published++;
        await res?.arrayBuffer();
        k++;
        await sleep(Math.max(0, 1000 / rate - (Date.now() - at)));
      }
    })();
    while (Date.now() < churnEnd) {
      await sleep(10_000);
      const all = await Promise.all(clients.map((child) => ask<{ open: number; connects: number }>(child, 'stats', 'stats')));
      stats = { open: all.reduce((s, c) => s + c.open, 0), connects: all.reduce((s, c) => s + c.connects, 0) };
      await sample();
    }
    await publisher;
    for (const child of clients) await ask(child, 'leave', 'left');
    stats = { open: 0, connects: stats.connects };
    phase = 'after';
    const settleEnd = Date.now() + settleS * 1000;
    while (Date.now() < settleEnd) {
      await sleep(10_000);
      await sample();
    }
  } finally {
    for (const child of clients) child.kill('SIGKILL');
    for (const server of servers) server.child.kill('SIGTERM');
    await sleep(3000);
    redis.disconnect();
    redisProcess.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(redisDir, { recursive: true, force: true });
  }
  report(samples, { durationS, subscribers, rate, settleS });
}

function report(samples: Sample[], settings: Record<string, number>): void {
  const resultsDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const machine = {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    loadAverage: os.loadavg().map((l) => Math.round(l * 10) / 10),
    node: process.version,
  };
  const before = samples.filter((s) => s.phase === 'before').at(-1)!;
  const after = samples.filter((s) => s.phase === 'after').at(-1)!;
  const peak = (pick: (s: Sample) => number) => Math.max(...samples.map(pick));
  const sum = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) * 10) / 10;
  writeFileSync(path.join(resultsDir, `redis-soak-${stamp}.json`), `${JSON.stringify({ machine, settings, samples }, null, 2)}\n`);
  const row = (s: Sample) =>
    `| ${s.t} | ${s.phase} | ${s.clientOpen} | ${s.connects} | ${s.openStreams.join(' / ')} | ${s.fds.join(' / ')} | ${s.heapMb.join(' / ')} | ${s.rssMb.join(' / ')} | ${s.redisKeys} | ${s.redisMemoryMb} | ${s.published} |`;
  const md = [
    `# Redis churn and soak (${stamp})`,
    '',
    `Machine: ${machine.cpus} CPUs (${machine.cpu}), Node ${machine.node}, load average at the end ${machine.loadAverage.join(' ')} (shared with other work).`,
    `Command: \`node --import tsx bench/redis-soak.ts --duration ${settings.durationS} --subscribers ${settings.subscribers} --rate ${settings.rate} --settle ${settings.settleS}\``,
    '',
    '| | before the clients | peak | after they left |',
    '|---|---|---|---|',
    `| open streams (both instances) | ${sum(before.openStreams)} | ${peak((s) => sum(s.openStreams))} | ${sum(after.openStreams)} |`,
    `| file descriptors (both) | ${sum(before.fds)} | ${peak((s) => sum(s.fds))} | ${sum(after.fds)} |`,
    `| JS heap in use, MB (both) | ${sum(before.heapMb)} | ${peak((s) => sum(s.heapMb))} | ${sum(after.heapMb)} |`,
    `| resident memory, MB (both; V8 keeps pages it grew into) | ${sum(before.rssMb)} | ${peak((s) => sum(s.rssMb))} | ${sum(after.rssMb)} |`,
    `| Redis keys | ${before.redisKeys} | ${peak((s) => s.redisKeys)} | ${after.redisKeys} |`,
    `| Redis used memory, MB | ${before.redisMemoryMb} | ${peak((s) => s.redisMemoryMb)} | ${after.redisMemoryMb} |`,
    '',
    `Connections opened over the run: ${after.connects}; events published: ${after.published}. Redis keys after the clients left are the per-topic histories (at most 501 topics here; each bounded by HISTORY_SIZE and HISTORY_TTL, their number by HISTORY_MAX_TOPICS) and the bus's fixed keys: the partition logs and their meta.`,
    '',
    '| t (s) | phase | client streams | connects | open streams (A / B) | fds (A / B) | heap MB (A / B) | RSS MB (A / B) | Redis keys | Redis MB | published |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...samples.map(row),
    '',
  ].join('\n');
  writeFileSync(path.join(resultsDir, `redis-soak-${stamp}.md`), md);
  console.log(md);
}

if (process.argv.includes('--client')) runClient();
else
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
