import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileUserStore } from '../../src/auth/file-user-store.js';
import { hashPassword } from '../../src/auth/password.js';
import { PASSWORD, TEST_LOG_N, type TokenResponse } from './server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = path.join(ROOT, 'src', 'main.ts');

/** A server started as its own process (`node --import tsx src/main.ts`), as an operator would. */
export interface Instance {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stderr. */
  stderr(): string;
  /** Its log lines (stdout), the last megabyte at most. */
  stdout(): string;
  /** Sends a signal and waits for the exit (SIGKILL: a crash, nothing flushed). */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * One deployment for the multi-instance tests: a shared data directory (users file), one HS256
 * secret and issuer, and a Redis key prefix of its own on the given Redis. Without a Redis URL, a
 * single server on the default store in that data directory (restart tests).
 */
export class Deployment {
  readonly dataDir = mkdtempSync(path.join(os.tmpdir(), 'notify-multi-'));
  readonly keyPrefix = `test:multi:${randomBytes(6).toString('hex')}:`;
  private readonly secret = randomBytes(32).toString('hex');
  private readonly instances: Instance[] = [];

  constructor(readonly redisUrl?: string) {}

  /** Adds accounts with the test password, before instances start (they also pick up later changes). */
  async addAccounts(accounts: Record<string, string[]>): Promise<void> {
    const store = new FileUserStore({ file: path.join(this.dataDir, 'users.json') });
    for (const [name, roles] of Object.entries(accounts)) {
      await store.add({ name, kind: 'user', roles, passwordHash: await hashPassword(PASSWORD, { logN: TEST_LOG_N }) });
    }
    await store.close();
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: this.dataDir,
      JWT_ALG: 'HS256',
      JWT_SECRET: this.secret,
      JWT_ISSUER: 'http://notify.test',
      SCRYPT_LOG_N: String(TEST_LOG_N),
      LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS: '1000',
      LOGIN_MAX_PER_ADDRESS: '10000',
      LOGIN_MAX_PER_ACCOUNT: '1000',
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE: '1',
      ...(this.redisUrl === undefined ? {} : { REDIS_URL: this.redisUrl, REDIS_KEY_PREFIX: this.keyPrefix }),
      ...extra,
    };
  }

  /** Starts an instance and resolves once it listens (its `listening` log line gives the port). */
  start(name: string, extra: Record<string, string> = {}): Promise<Instance> {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      cwd: ROOT,
      env: this.env(extra),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-1_000_000)));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const instance = (url: string): Instance => ({
      name,
      url,
      child,
      stderr: () => stderr,
      stdout: () => stdout,
      async kill(signal = 'SIGTERM') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        await exited;
      },
    });
    return new Promise((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name} did not start in 40 s: ${stderr}`));
      }, 40_000);
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (!line.includes('"listening"')) continue;
          const address = (JSON.parse(line) as { address: string }).address;
          clearTimeout(timer);
          const started = instance(address);
          this.instances.push(started);
          resolve(started);
        }
        if (buffered.length > 1_000_000) buffered = '';
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before listening: ${stderr}`));
      });
    });
  }

  async destroy(): Promise<void> {
    await Promise.all(this.instances.map((instance) => instance.kill('SIGKILL')));
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export async function login(url: string, name: string): Promise<TokenResponse> {
  const res = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name, password: PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`login ${name} on ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as TokenResponse;
}

export async function refresh(url: string, refreshToken: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  return { status: res.status, body: await res.json() };
}
