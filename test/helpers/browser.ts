import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Config } from '../../src/config.js';
import { createNotifyServer, type NotifyServer } from '../../src/server.js';
import { testConfig } from './server.js';

/**
 * Real headless Chromium for the browser tests: Debian's `/usr/bin/chromium` (installed by
 * `.ci/run`), driven with playwright-core; no browser is ever downloaded. Playwright gives each
 * launch a fresh temporary profile (user-data-dir). The background-networking flags keep Chromium
 * from calling home on a closed network.
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/** Records a page's console errors, uncaught exceptions and requests to any other origin. */
export function watchPage(page: Page, origin: string): { errors: string[]; foreign: string[] } {
  const errors: string[] = [];
  const foreign: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith('data:') && new URL(url).origin !== origin) foreign.push(url);
  });
  return { errors, foreign };
}

/** A test server that can be restarted on the same port and data directory (users and signing key survive; memory state does not). */
export interface RestartableServer {
  readonly url: string;
  readonly config: Config;
  server: NotifyServer;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startRestartableServer(overrides?: (config: Config) => Config): Promise<RestartableServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'notify-browser-'));
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  let config = testConfig(dataDir, {}, overrides);
  let server = await createNotifyServer(config, { logger });
  const { port } = await server.listen();
  config = { ...config, port };
  const stop = async (current: NotifyServer) => {
    const closing = current.close();
    current.http.closeAllConnections();
    await closing;
  };
  const handle: RestartableServer = {
    url: `http://127.0.0.1:${port}`,
    config,
    server,
    async restart() {
      await stop(handle.server);
      server = await createNotifyServer(config, { logger });
      await server.listen();
      handle.server = server;
    },
    async close() {
      await stop(handle.server);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}

/**
 * A bare page on the server's origin (fulfilled by the test, not served by the server) that loads
 * the client bundle `/app/notify-client.js` and exposes a small harness as `window.harness`.
 */
const HARNESS_PATH = '/__test/harness.html';
const HARNESS_HTML = `<!doctype html><meta charset="utf-8"><title>harness</title>
<script type="module">
import { NotifyClient, createBrowserClient, createTabCoordinator } from '/app/notify-client.js';
const h = { received: [], ids: [], resets: [], stops: [], states: [], connects: 0, renewals: 0 };
h.start = async ({ shared, coordinated, login, topics, renew }) => {
  const client = shared
    ? createBrowserClient()
    : new NotifyClient({ mode: 'cookie', backoff: { initialMs: 200, maxMs: 1000 }, coordinator: coordinated ? createTabCoordinator() : undefined });
  h.client = client;
  if (shared) await client.ready;
  const session = login ? await client.login(login.username, login.password) : await client.restore();
  h.subscription = client.subscribe(topics, {
    event: (e) => { h.received.push(e.data && typeof e.data === 'object' && 'n' in e.data ? e.data.n : e.data); h.ids.push(e.id); },
    reset: (info) => h.resets.push(info.reason),
    connected: () => { h.connects++; },
    renewed: () => { h.renewals++; },
    state: (s) => h.states.push(s),
    stop: (e) => h.stops.push(e.code),
  }, { renew });
  return session?.subject;
};
window.harness = h;
</script>`;

export async function openHarness(page: Page, baseUrl: string): Promise<void> {
  await page.route(`${baseUrl}${HARNESS_PATH}`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: HARNESS_HTML }));
  await page.goto(`${baseUrl}${HARNESS_PATH}`);
  await page.waitForFunction(() => (window as unknown as { harness?: unknown }).harness !== undefined);
}
