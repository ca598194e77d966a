import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './redis.js';

const MASTER_NAME = 'notify-test';

/**
 * A Redis primary, one replica and three sentinels (Debian's redis-server and redis-sentinel) on
 * loopback ports, in a temporary directory: a real failover, started and torn down by the test.
 * Sentinels declare the primary down after 1 s without an answer and fail over at once.
 */
export class SentinelDeployment {
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'notify-sentinel-'));
  private readonly processes = new Map<number, ChildProcess>();

  private constructor(
    readonly primaryPort: number,
    readonly replicaPort: number,
    readonly sentinelPorts: number[],
  ) {}

  static async start(): Promise<SentinelDeployment> {
    const ports = [];
    for (let i = 0; i < 5; i++) ports.push(await freePort());
    const [primary, replica, ...sentinels] = ports as [number, number, ...number[]];
    const deployment = new SentinelDeployment(primary, replica, sentinels);
    await deployment.startRedis(primary, []);
    await deployment.startRedis(replica, ['--replicaof', '127.0.0.1', String(primary)]);
    await deployment.waitForReplica();
    for (const port of sentinels) {
      const file = path.join(deployment.dir, `sentinel-${port}.conf`);
      writeFileSync(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${deployment.dir}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 10000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      deployment.spawn(port, 'redis-sentinel', [file]);
      await deployment.ping(port);
    }
    // Every sentinel has found the replica and the other sentinels: a failover can be agreed on.
    await deployment.until(async () => {
      for (const port of sentinels) {
        const client = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        client.on('error', () => undefined);
        try {
          await client.connect();
          const info = (await client.call('SENTINEL', 'MASTER', MASTER_NAME)) as string[];
          const field = (name: string) => Number(info[info.indexOf(name) + 1]);
          if (field('num-slaves') < 1 || field('num-other-sentinels') < 2) return false;
        } finally {
          client.disconnect();
        }
      }
      return true;
    }, 20_000);
    return deployment;
  }

  /** `REDIS_URL` for the deployment: the sentinels, and the name of the primary they watch. */
  get url(): string {
    return `redis+sentinel://${this.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(',')}/${MASTER_NAME}`;
  }

  /** Kills the primary (SIGKILL: a crash, nothing flushed). */
  killPrimary(): void {
    this.processes.get(this.primaryPort)?.kill('SIGKILL');
  }

  /** Starts the killed primary again, empty; the sentinels turn it into a replica of the new primary. */
  async restartOldPrimary(): Promise<void> {
    await this.startRedis(this.primaryPort, []);
  }

  /** Resolves once a sentinel names `port` as the primary. */
  async waitForPrimary(port: number, timeoutMs = 30_000): Promise<void> {
    await this.until(async () => {
      const client = new Redis({ port: this.sentinelPorts[0], lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const [, masterPort] = (await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as [string, string];
        return Number(masterPort) === port;
      } finally {
        client.disconnect();
      }
    }, timeoutMs);
  }

  async destroy(): Promise<void> {
    const exits = [...this.processes.values()].map(
      (child) =>
        new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve))),
    );
    for (const child of this.processes.values()) child.kill('SIGKILL');
    await Promise.all(exits);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private spawn(port: number, command: string, args: string[]): void {
    this.processes.set(port, spawn(command, args, { stdio: 'ignore' }));
  }

  private async startRedis(port: number, extra: string[]): Promise<void> {
    this.spawn(port, 'redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--dbfilename',
      `dump-${port}.rdb`,
      '--save',
      '',
      '--appendonly',
      'no',
      ...extra,
    ]);
    await this.ping(port);
  }

  private async waitForReplica(): Promise<void> {
    await this.until(async () => {
      const client = new Redis({ port: this.replicaPort, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return /master_link_status:up/.test(await client.info('replication'));
      } finally {
        client.disconnect();
      }
    }, 20_000);
  }

  private async ping(port: number): Promise<void> {
    await this.until(async () => {
      const client = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return (await client.ping()) === 'PONG';
      } finally {
        client.disconnect();
      }
    }, 10_000);
  }

  private async until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`sentinel deployment (${this.dir}): timed out`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
