import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Resolver } from '../../src/webhooks/address-policy.js';
import { createHttpTransport } from '../../src/webhooks/http-transport.js';
import { parseWebhookConfig } from '../../src/webhooks/webhook-config.js';
import { createWebhookDispatcher, type WebhookDispatcher } from '../../src/webhooks/webhook-dispatcher.js';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { connected, newSecret } from './webhook-test-kit.js';

describe('webhook delivery over https to a name resolved by the checked lookup', () => {
  let dir: string;
  let server: https.Server;
  let cert: Buffer;
  let received: string[];
  let dispatcher: WebhookDispatcher | undefined;
  const toLoopback: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'notify-webhook-tls-'));
    const pair = selfSignedCertificate(dir, 'DNS:hooks.test', 'hooks');
    cert = pair.cert;
    server = https.createServer({ cert: pair.cert, key: pair.key }, (request, response) => {
      received.push(request.headers['webhook-id'] as string);
      request.resume();
      request.on('end', () => response.writeHead(204).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  beforeEach(() => {
    received = [];
  });

  afterEach(async () => {
    await dispatcher?.close();
    dispatcher = undefined;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  function start(name: string, ca: Buffer): WebhookDispatcher {
    const port = (server.address() as AddressInfo).port;
    const targets = parseWebhookConfig({
      targets: [
        {
          url: `https://${name}:${port}/hook`,
          events: ['connected'],
          secret: newSecret(),
          allowPrivateNetwork: true,
          lingerMs: 10,
          retryInitialDelayMs: 20,
        },
      ],
    });
    return createWebhookDispatcher({ targets, instance: 'notify-test-1', transport: createHttpTransport({ resolver: toLoopback, ca }) });
  }

  async function waitFor(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 8000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  it('checks the certificate against the name in the URL, not the address it connected to', async () => {
    dispatcher = start('hooks.test', cert);
    dispatcher.enqueue(connected('alice'));
    await waitFor(() => dispatcher!.stats()[0]!.events.delivered === 1, 'the delivery');
    expect(received).to.have.length(1);
  });

  it('refuses a certificate for another name (the name resolves to the same receiver)', async () => {
    dispatcher = start('other.test', cert);
    dispatcher.enqueue(connected('alice'));
    await waitFor(() => dispatcher!.stats()[0]!.attempts.network_error >= 2, 'two refused handshakes');
    expect(received).to.have.length(0);
  });

  it('refuses a certificate no trusted CA signed', async () => {
    dispatcher = start('hooks.test', selfSignedCertificate(dir, 'DNS:rogue.test', 'rogue').cert);
    dispatcher.enqueue(connected('alice'));
    await waitFor(() => dispatcher!.stats()[0]!.attempts.network_error >= 2, 'two refused handshakes');
    expect(received).to.have.length(0);
  });
});
