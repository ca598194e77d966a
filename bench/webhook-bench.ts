/**
 * Does a webhook target slow publishes? (issue 15) Self-contained: starts its own server process
 * (memory backend, pinned to CPU 0 when `taskset` exists) in three configurations, churns streams
 * on presence topics (every open and close makes `connected` / `disconnected`, and the members
 * `member-added` / `member-removed` and occupancy events), publishes at a fixed concurrency
 * meanwhile and measures each publish's latency (POST to 201, as the publisher sees it).
 *
 *   node --import tsx bench/webhook-bench.ts                    # 3 runs of each configuration, medians
 *   node --import tsx bench/webhook-bench.ts --runs 1 --publishes 1000
 *
 * Configurations: `none` (no WEBHOOKS_FILE), `answering` (a receiver that answers 204 at once),
 * `hanging` (a receiver that accepts every connection and never answers: each request waits out
 * the target's 10 s timeout while the queue fills and overflows). Loopback only; every loop is
 * bounded in count and time. Results go to bench/results/webhooks-<date>.json and .md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileUserStore } from '../src/auth/file-user-store.js';
import { hashPassword } from '../src/auth/password.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PASSWORD = 'bench-password-123';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const RUNS = arg('runs', 3);
const PUBLISHES = arg('publishes', 2000);
const CONCURRENCY = arg('concurrency', 4);
const CHURNERS = arg('churners', 8);
const USERS = 40;
const PHASE_TIMEOUT_MS = 120_000;
const pinned = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

type Mode = 'none' | 'answering' | 'hanging';

/** A webhook receiver in this process: answers at once, or holds every request open. */
async function startReceiver(mode: Exclude<Mode, 'none'>): Promise<{ url: string; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  const server = http.createServer((request, response) => {
    received++;
    request.resume();
    if (mode === 'answering') request.on('end', () => response.writeHead(204).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received: () => received,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface Server {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

async function startServer(dataDir: string, env: Record<string, string>): Promise<Server> {
  const command = pinned ? 'taskset' : process.execPath;
  const args = [...(pinned ? ['-c', '0', process.execPath] : []), '--import', 'tsx', path.join(ROOT, 'src/main.ts')];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      SCRYPT_LOG_N: '10',
      LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS: '1000',
      LOGIN_MAX_PER_ADDRESS: '100000',
      LOGIN_MAX_PER_ACCOUNT: '100000',
      SHUTDOWN_GRACE: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // The `listening` log line gives the port; the request log that follows is drained, as a log shipper would.
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find((entry) => entry.includes('"listening"'));
      if (line === undefined) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { address: string }).address);
      buffered = '';
      child.stdout.removeAllListeners('data');
      child.stdout.resume();
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
  return {
    url,
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

async function login(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name, password: PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`login ${name}: ${res.status}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

/** Opens a stream, waits for `connected`, closes it; again and again until `stop`. Returns the streams opened. */
async function churn(url: string, tokens: readonly string[], offset: number, stop: () => boolean): Promise<number> {
  let opened = 0;
  while (!stop()) {
    const user = (offset + opened) % tokens.length;
    const controller = new AbortController();
    try {
      const res = await fetch(`${url}/events?topic=public/rooms/${user % 10}`, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${tokens[user]}` },
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      let text = '';
      while (!text.includes('event: connected')) {
        const { done, value } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
      opened++;
    } catch {
      // aborted or refused: counted as nothing
    } finally {
      controller.abort();
    }
  }
  return opened;
}

async function measurePublishes(url: string, token: string): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < PUBLISHES && Date.now() < deadline) {
        const i = next++;
        const started = performance.now();
        const res = await fetch(`${url}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ topics: [`public/rooms/${i % 10}`], type: 'tick', data: { i } }),
        });
        await res.arrayBuffer();
        if (res.status !== 201) throw new Error(`publish: ${res.status}`);
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

interface RunResult {
  readonly mode: Mode;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly publishes: number;
  readonly streamsChurned: number;
  readonly webhookRequests: number;
}

async function run(mode: Mode, dataDir: string): Promise<RunResult> {
  const receiver = mode === 'none' ? undefined : await startReceiver(mode);
  const presenceFile = path.join(dataDir, 'presence.yaml');
  writeFileSync(presenceFile, 'topics:\n  - selector: public/rooms/*\n');
  const env: Record<string, string> = { PRESENCE_FILE: presenceFile, PRESENCE_LEAVE_DELAY: '0' };
  if (receiver !== undefined) {
    const webhooksFile = path.join(dataDir, 'webhooks.json');
    writeFileSync(
      webhooksFile,
      JSON.stringify({
        targets: [
          {
            url: receiver.url,
            events: ['connected', 'disconnected', 'topic-occupied', 'topic-vacated', 'member-added', 'member-removed'],
            secret: randomBytes(32).toString('base64'),
            allowPrivateNetwork: true,
          },
        ],
      }),
    );
    env.WEBHOOKS_FILE = webhooksFile;
  }
  const server = await startServer(dataDir, env);
  try {
    const tokens = await Promise.all(Array.from({ length: USERS }, (_, i) => login(server.url, `u${i}`)));
    const publisher = await login(server.url, 'newsroom');
    let stopped = false;
    const churners = Array.from({ length: CHURNERS }, (_, i) => churn(server.url, tokens, i * 5, () => stopped));
    await sleep(1000); // churn reaches its pace (and the hanging receiver's queue fills) before measuring
    const latencies = await measurePublishes(server.url, publisher);
    stopped = true;
    const churned = (await Promise.all(churners)).reduce((a, b) => a + b, 0);
    return {
      mode,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: latencies.at(-1)!,
      publishes: latencies.length,
      streamsChurned: churned,
      webhookRequests: receiver?.received() ?? 0,
    };
  } finally {
    await server.stop();
    await receiver?.close();
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'notify-webhook-bench-'));
  try {
    const users = new FileUserStore({ file: path.join(dataDir, 'users.json') });
    const hash = await hashPassword(PASSWORD, { logN: 10 });
    for (let i = 0; i < USERS; i++) await users.add({ name: `u${i}`, kind: 'user', roles: ['user'], passwordHash: hash });
    await users.add({ name: 'newsroom', kind: 'user', roles: ['publisher'], passwordHash: hash });
    await users.close();
    const results: RunResult[] = [];
    for (let r = 0; r < RUNS; r++) {
      for (const mode of ['none', 'answering', 'hanging'] as const) {
        const result = await run(mode, dataDir);
        process.stderr.write(
          `[webhook-bench] run ${r + 1} ${mode}: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, ${result.streamsChurned} streams churned, ${result.webhookRequests} webhook requests\n`,
        );
        results.push(result);
      }
    }
    const rows = (['none', 'answering', 'hanging'] as const).map((mode) => {
      const mine = results.filter((result) => result.mode === mode);
      return {
        mode,
        p50: median(mine.map((result) => result.p50)),
        p99: median(mine.map((result) => result.p99)),
        max: median(mine.map((result) => result.max)),
        churned: median(mine.map((result) => result.streamsChurned)),
        requests: median(mine.map((result) => result.webhookRequests)),
      };
    });
    const base = rows[0]!.p99;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
    const markdown = [
      `# Publish latency with lifecycle webhooks (issue 15)`,
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${commit}, Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}); server ${pinned ? 'pinned to CPU 0' : 'not pinned'}; median of ${RUNS} run(s).`,
      `Each run: ${PUBLISHES} publishes (POST /events with a JWT, ${CONCURRENCY} in flight) while ${CHURNERS} loops open a stream on a presence topic, wait for \`connected\` and close it (each a connected, disconnected, member-added/removed and occupancy event).`,
      '',
      '| webhook target | publish p50 (ms) | publish p99 (ms) | max (ms) | p99 vs none | streams churned | webhook requests |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (row) =>
          `| ${row.mode} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ${row.max.toFixed(2)} | ${(row.p99 / base).toFixed(2)}x | ${row.churned} | ${row.requests} |`,
      ),
      '',
      `Command: \`node --import tsx bench/webhook-bench.ts --runs ${RUNS} --publishes ${PUBLISHES} --concurrency ${CONCURRENCY} --churners ${CHURNERS}\``,
      '',
    ].join('\n');
    mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(path.join(ROOT, 'bench', 'results', `webhooks-${stamp}.md`), markdown);
    writeFileSync(path.join(ROOT, 'bench', 'results', `webhooks-${stamp}.json`), `${JSON.stringify({ rows, results }, null, 2)}\n`);
    process.stdout.write(markdown);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
