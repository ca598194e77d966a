/**
 * What the store benchmarks (`store-bench.ts`, `store-soak.ts`) share: a built server started on a
 * chosen store and pinned to CPU 0 (its event-loop delay recorded by `preload-loop-delay.mjs`), a
 * keep-alive publisher, and lean raw-TCP subscribers that count delivered events. Self-contained
 * on purpose (only `proc.ts` and `tokens.ts` of the main bench), so it does not move with it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, rssBytes } from './proc.js';
import { signToken, type SigningSetup } from './tokens.js';

export const BENCH = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH, '..');
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const log = (...parts: unknown[]) => process.stderr.write(`[store ${new Date().toISOString().slice(11, 19)}] ${parts.join(' ')}\n`);

/** Runs the bench on CPU 1 and builds dist/ (the server under test is the built one, as in production). */
export function prepare(): void {
  spawnSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
  if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
}

export interface BenchServer {
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number;
  readonly signing: SigningSetup;
  /** User + system CPU seconds of the server, every thread (the writer thread included). */
  cpu(): number;
  rss(): number;
  /** The longest event-loop delay (ms) recorded since `since` (epoch ms), from the 1-second samples. */
  longestPause(since: number): number;
  /** Per-second samples `{ t, maxMs }` since `since`. */
  pauses(since: number): Array<{ t: number; maxMs: number }>;
  /** The server's log lines at level warn and above, so far (at most 1,000). */
  warnings(): readonly string[];
  /** Bytes of the store file and its WAL on disk (allocated). */
  storeBytes(): { db: number; wal: number };
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  return port;
}

/** Starts `node dist/main.js` on CPU 0 with `env` on top of the bench defaults; resolves once it listens. */
export async function startServer(env: Record<string, string>): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-store-'));
  const dataDir = path.join(dir, 'data');
  const loopFile = path.join(dir, 'loop.jsonl');
  const port = await freePort();
  const child: ChildProcess = spawn(
    'taskset',
    ['-c', '0', process.execPath, '--import', path.join(BENCH, 'preload-loop-delay.mjs'), path.join(ROOT, 'dist', 'main.js')],
    {
      // Hour-long tokens: the soak's subscribers must outlive its ten minutes.
      env: {
        PATH: process.env.PATH,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        ACCESS_TOKEN_TTL: '3600',
        BENCH_LOOP_FILE: loopFile,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let started = '';
  const onLog = (chunk: Buffer) => {
    if (started.length < 100_000) started += chunk.toString();
  };
  child.stdout!.on('data', onLog);
  const deadline = Date.now() + 20_000;
  while (!started.includes('"listening"')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the server did not start: ${started}`);
    await sleep(50);
  }
  child.stdout!.off('data', onLog);
  // Logs stay on (info), drained as a log collector would; warnings and errors are kept (bounded).
  const warnings: string[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (/"level":[456]0/.test(line) && warnings.length < 1000) warnings.push(line);
  });
  const samples = (since: number) => {
    let text: string;
    try {
      text = readFileSync(loopFile, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { t: number; maxMs: number })
      .filter((sample) => sample.t >= since);
  };
  const allocated = (file: string) => {
    try {
      return statSync(file).blocks * 512;
    } catch {
      return 0;
    }
  };
  return {
    port,
    dataDir,
    pid: child.pid!,
    signing: { keyFile: path.join(dataDir, 'signing-key-ed25519.pem'), issuer: `http://127.0.0.1:${port}`, audience: 'notify', ttl: 3600 },
    warnings: () => warnings,
    cpu: () => cpuSeconds([child.pid!]),
    rss: () => rssBytes([child.pid!]),
    pauses: samples,
    longestPause: (since) => samples(since).reduce((max, sample) => Math.max(max, sample.maxMs), 0),
    storeBytes: () => ({ db: allocated(path.join(dataDir, 'notify.db')), wal: allocated(path.join(dataDir, 'notify.db-wal')) }),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A publisher with a token of the `bench-publisher` grants (`public/**`). */
export async function publisher(
  server: BenchServer,
): Promise<(topics: string[], data: unknown, idempotencyKey?: string) => Promise<{ status: number; ms: number }>> {
  const token = await signToken(server.signing, 'bench-publisher');
  // One agent per server: a port can come round again, and a kept-alive socket to the old server with it.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  return (topics, data, idempotencyKey) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ topics, data, idempotencyKey });
      const started = performance.now();
      const req = http.request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/events',
          method: 'POST',
          agent,
          timeout: 30_000,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('publish timed out')));
      req.on('error', reject);
      req.end(body);
    });
}

/** Raw-TCP SSE subscribers that count frames carrying `"t":` (every bench event does). */
export class Subscribers {
  private readonly sockets: net.Socket[] = [];
  delivered = 0;

  static async open(server: BenchServer, paths: string[]): Promise<Subscribers> {
    const subs = new Subscribers();
    const marker = Buffer.from('"t":');
    for (let i = 0; i < paths.length; i += 50) {
      await Promise.all(
        paths.slice(i, i + 50).map(async (requestPath, k) => {
          const token = await signToken(server.signing, `u${i + k}`);
          const socket = net.connect({ host: '127.0.0.1', port: server.port });
          socket.setNoDelay(true);
          await once(socket, 'connect');
          socket.write(
            `GET ${requestPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${token}\r\n\r\n`,
          );
          const [first] = (await once(socket, 'data')) as [Buffer];
          if (!first.toString('latin1', 0, 12).includes('200'))
            throw new Error(`subscribe ${requestPath}: ${first.toString('latin1', 0, 80)}`);
          socket.on('data', (chunk: Buffer) => {
            for (let at = chunk.indexOf(marker); at !== -1; at = chunk.indexOf(marker, at + 4)) subs.delivered++;
          });
          socket.on('error', () => undefined);
          subs.sockets.push(socket);
        }),
      );
    }
    return subs;
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}

export const percentile = (sorted: readonly number[], q: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

export const loadAverage = () =>
  os
    .loadavg()
    .map((value) => value.toFixed(1))
    .join(', ');
