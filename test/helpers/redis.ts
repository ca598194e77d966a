import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';

/** The shared Redis the tests use (`.ci/run` starts one on loopback). */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The shared 3-primary Redis Cluster (`scripts/test-services.sh` starts it on loopback, once per machine). */
export const TEST_REDIS_CLUSTER = process.env.TEST_REDIS_CLUSTER ?? 'redis+cluster://127.0.0.1:30001,127.0.0.1:30002,127.0.0.1:30003';

/** The Redis deployments the Redis contract suites run on: moving between them is only `REDIS_URL`. */
export const REDIS_TARGETS: ReadonlyArray<readonly [name: string, url: string]> = [
  ['redis', TEST_REDIS_URL],
  ['redis cluster', TEST_REDIS_CLUSTER],
];

/** A plain connection to each primary of `url` (one for a single Redis, every master of a cluster). */
async function primaries(url: string): Promise<Redis[]> {
  if (!url.startsWith('redis+cluster://')) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    await client.connect();
    return [client];
  }
  const seeds = url
    .slice('redis+cluster://'.length)
    .split(',')
    .map((node) => ({ host: node.slice(0, node.lastIndexOf(':')), port: Number(node.slice(node.lastIndexOf(':') + 1)) }));
  const cluster = new Cluster(seeds, { lazyConnect: true });
  cluster.on('error', () => undefined);
  try {
    await cluster.connect();
    const masters = cluster.nodes('master').map((node) => ({ host: node.options.host!, port: node.options.port! }));
    const clients = masters.map((master) => new Redis({ ...master, lazyConnect: true, maxRetriesPerRequest: 1 }));
    for (const client of clients) client.on('error', () => undefined);
    await Promise.all(clients.map((client) => client.connect()));
    return clients;
  } finally {
    cluster.disconnect();
  }
}

/** Every key under `prefix`, on every primary. */
export async function listKeys(url: string, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const client of await primaries(url)) {
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        found.push(...keys);
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
  }
  return found;
}

/** A key prefix no other test (or test run) uses, so tests can share one Redis. */
export function uniquePrefix(label: string): string {
  return `test:${label}:${randomBytes(6).toString('hex')}:`;
}

/** Deletes every key under `prefix` (on a cluster, on every primary, one key at a time: keys span slots). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  for (const client of await primaries(url)) {
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await Promise.all(keys.map((key) => client.unlink(key)));
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
  }
}

/** A free loopback TCP port (asks the kernel, then releases it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A redis-server of the test's own (for tests that stop and restart Redis), with persistence on
 * (`appendonly yes`, fsync on every write) in a temporary directory, on a free loopback port.
 */
export class OwnRedis {
  private process: ChildProcess | undefined;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'notify-redis-'));

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort());
    await redis.restart();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port and directory; resolves once it answers PING. */
  async restart(): Promise<void> {
    this.process = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 5000;
    for (;;) {
      const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.ping();
        client.disconnect();
        return;
      } catch {
        client.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Stops it gracefully (SIGTERM: the append-only file is flushed) and waits for the exit. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
