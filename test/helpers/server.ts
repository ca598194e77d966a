import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { pino, type Logger } from 'pino';
import { hashPassword } from '../../src/auth/password.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createNotifyServer, type NotifyServer } from '../../src/server.js';
import { CONTROL_EVENT_TYPES } from '../../src/streams/control-events.js';
import { deleteKeys } from './redis.js';

/** Cheap scrypt for tests: the cost parameter is read from each stored hash, so production code paths are unchanged. */
export const TEST_LOG_N = 10;
export const PASSWORD = 'correct horse battery staple';

export interface TestServer {
  readonly url: string;
  readonly server: NotifyServer;
  readonly config: Config;
  readonly dataDir: string;
  /** Adds an account with the test password (or `secret` for a service client). */
  addAccount(name: string, roles: string[], options?: { kind?: 'user' | 'service'; password?: string }): Promise<void>;
  /** Signs in and returns the token response body. */
  login(name: string, password?: string): Promise<TokenResponse>;
  close(): Promise<void>;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
}

/** Config for tests: fast hashing, generous login limits, everything else as shipped unless overridden. */
export function testConfig(dataDir: string, env: Record<string, string> = {}, overrides: (config: Config) => Config = (c) => c): Config {
  return overrides(
    loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      SCRYPT_LOG_N: String(TEST_LOG_N),
      LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS: '1000',
      LOGIN_MAX_PER_ADDRESS: '10000',
      LOGIN_MAX_PER_ACCOUNT: '1000',
      JWT_ISSUER: 'http://notify.test',
      // Every HTTP test runs on the default store (SQLite, in this server's own DATA_DIR);
      // `TEST_STORE=redis` (or `TEST_BUS=redis`) runs them on Redis, `TEST_STORE=memory` on the in-memory store.
      ...(env.STORE === undefined && env.REDIS_URL === undefined ? testStoreEnv() : {}),
      ...env,
    }),
  );
}

/** The store `TEST_STORE` (or `TEST_BUS`) asks for: nothing for the default, else the settings that choose it. */
function testStoreEnv(): Record<string, string> {
  const store = process.env.TEST_STORE ?? (process.env.TEST_BUS === 'redis' ? 'redis' : undefined);
  if (store === 'redis') {
    return {
      REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: `test:${randomBytes(6).toString('hex')}:`,
    };
  }
  return store === undefined ? {} : { STORE: store };
}

/**
 * Starts a real server on an ephemeral loopback port with its own data directory.
 * @param overrides edits the parsed config, e.g. to set lifetimes below what the env schema allows.
 */
export async function startServer(
  env: Record<string, string> = {},
  overrides?: (config: Config) => Config,
  options: { logger?: Logger } = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'notify-test-'));
  const config = testConfig(dataDir, env, overrides);
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const server = await createNotifyServer(config, { logger });
  const address = await server.listen();
  const url = `http://127.0.0.1:${address.port}`;
  return {
    url,
    server,
    config,
    dataDir,
    async addAccount(name, roles, options = {}) {
      await server.users.add({
        name,
        kind: options.kind ?? 'user',
        roles,
        passwordHash: await hashPassword(options.password ?? PASSWORD, { logN: TEST_LOG_N }),
      });
    },
    async login(name, password = PASSWORD) {
      const res = await fetch(`${url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: name, password }),
      });
      if (res.status !== 200) throw new Error(`login ${name}: ${res.status} ${await res.text()}`);
      return (await res.json()) as TokenResponse;
    },
    async close() {
      server.http.closeAllConnections();
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
      if (config.backend.kind === 'redis') await deleteKeys(config.backend.url, config.backend.keyPrefix);
    },
  };
}

/** POSTs JSON with a bearer token. */
export async function postJson(url: string, body: unknown, token?: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    body: JSON.stringify(body),
  });
}

export interface ReceivedEvent {
  readonly type: string;
  readonly id: string;
  /**
   * The event's data as text. For a published event, the published value's JSON: the server
   * wraps it as `{"topic": ..., "data": ...}`, and this helper unwraps it as the client library
   * does (`topic` holds the rest). Control events (`connected`, ...) carry their data as sent.
   */
  readonly data: string;
  /** The topic a published event names; undefined for control events. */
  readonly topic?: string;
}

export interface StreamClient {
  readonly source: EventSource;
  /** Every event received so far (named and unnamed), in order. */
  readonly events: ReceivedEvent[];
  /** Resolves with the first event (from now or already received) matching `predicate`. */
  waitFor(predicate: (event: ReceivedEvent) => boolean, timeoutMs?: number): Promise<ReceivedEvent>;
  /** Resolves once the stream reports an error (closed by the server, or refused). */
  waitForError(timeoutMs?: number): Promise<{ code?: number; message?: string }>;
  close(): void;
}

const SERVER_EVENTS: readonly string[] = CONTROL_EVENT_TYPES;

/** A received event, a published one unwrapped from its `{ topic, data }` envelope. */
function received(type: string, id: string, data: string): ReceivedEvent {
  if (SERVER_EVENTS.includes(type)) return { type, id, data };
  const envelope = JSON.parse(data) as { topic: string; data: unknown };
  if (Object.keys(envelope).join() !== 'topic,data' || typeof envelope.topic !== 'string') {
    throw new Error(`a published event without its topic envelope: ${data}`);
  }
  return { type, id, data: JSON.stringify(envelope.data), topic: envelope.topic };
}

/**
 * Opens a stream with the real `eventsource` client. `token` may be a function: it is called on
 * every (re)connect, as a browser client would hand a fresh token.
 */
export function openStream(
  url: string,
  token: string | (() => string) | undefined,
  options: { types?: string[]; headers?: Record<string, string> } = {},
): StreamClient {
  const events: ReceivedEvent[] = [];
  const waiters = new Set<() => void>();
  const errors: Array<{ code?: number; message?: string }> = [];
  const source = new EventSource(url, {
    fetch: (input, init) => {
      const headers = new Headers(init?.headers);
      const value = typeof token === 'function' ? token() : token;
      if (value !== undefined) headers.set('authorization', `Bearer ${value}`);
      for (const [name, header] of Object.entries(options.headers ?? {})) headers.set(name, header);
      return fetch(input, { ...init, headers });
    },
  });
  const record = (event: MessageEvent) => {
    events.push(received(event.type, event.lastEventId, event.data as string));
    for (const wake of waiters) wake();
  };
  source.onmessage = record;
  for (const type of [...SERVER_EVENTS, ...(options.types ?? [])]) source.addEventListener(type, record);
  source.onerror = (event) => {
    errors.push({ code: (event as { code?: number }).code, message: (event as { message?: string }).message });
    for (const wake of waiters) wake();
  };
  const wait = <T>(check: () => T | undefined, timeoutMs: number, what: string) =>
    new Promise<T>((resolve, reject) => {
      const done = check();
      if (done !== undefined) return resolve(done);
      const timer = setTimeout(() => {
        waiters.delete(wake);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(events)}`));
      }, timeoutMs);
      const wake = () => {
        const value = check();
        if (value === undefined) return;
        clearTimeout(timer);
        waiters.delete(wake);
        resolve(value);
      };
      waiters.add(wake);
    });
  return {
    source,
    events,
    waitFor: (predicate, timeoutMs = 5000) => wait(() => events.find(predicate), timeoutMs, 'an event'),
    waitForError: (timeoutMs = 5000) => wait(() => errors[0], timeoutMs, 'a stream error'),
    close: () => source.close(),
  };
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
