import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { parseWebhookConfig } from '../../src/webhooks/webhook-config.js';
import { openStream, startServer, type StreamClient, type TestServer } from '../helpers/server.js';
import { freePort } from '../helpers/redis.js';

/** The two `js` blocks of the README's "Verifying webhooks": the verify function, then the receiver. */
function readmeBlocks(): [verify: string, receiver: string] {
  const markdown = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = markdown.slice(markdown.indexOf('### Verifying webhooks'));
  const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((match) => match[1]!);
  expect(blocks.length, 'two js blocks').to.be.at.least(2);
  return [blocks[0]!, blocks[1]!];
}

describe("the README's copy-paste webhook receiver (issue 15)", function () {
  this.timeout(20_000);
  let dir: string;
  let receiver: ChildProcess;
  let output = '';
  let port: number;
  let t: TestServer;
  let stream: StreamClient | undefined;
  const secret = randomBytes(32).toString('base64');

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'notify-readme-receiver-'));
    const [verify, code] = readmeBlocks();
    writeFileSync(path.join(dir, 'verify-notify-webhook.mjs'), verify);
    writeFileSync(path.join(dir, 'receiver.mjs'), code);
    port = await freePort();
    receiver = spawn(process.execPath, ['receiver.mjs'], {
      cwd: dir,
      env: { PATH: process.env.PATH, PORT: String(port), NOTIFY_WEBHOOK_SECRET: secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    receiver.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    receiver.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitForOutput('receiver listening');
    const targets = parseWebhookConfig({
      targets: [{ url: `http://127.0.0.1:${port}/hooks`, events: ['connected'], secret, allowPrivateNetwork: true, lingerMs: 10 }],
    });
    t = await startServer({}, (config) => ({ ...config, webhooks: { targets } }));
    await t.addAccount('alice', ['user']);
  });

  after(async () => {
    stream?.close();
    await t.close();
    receiver.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  async function waitForOutput(text: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!output.includes(text)) {
      if (Date.now() > deadline || receiver.exitCode !== null) throw new Error(`receiver never printed ${JSON.stringify(text)}: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('verifies and prints what the server sends', async () => {
    stream = openStream(`${t.url}/events?topic=public/news`, (await t.login('alice')).access_token);
    await stream.waitFor((event) => event.type === 'connected');
    await waitForOutput('connected alice public/news');
  });

  it('answers 401 to a request that is not signed with the secret', async () => {
    const body = JSON.stringify({ missed: 0, events: [{ kind: 'connected', subject: 'mallory', topics: ['x'] }] });
    const res = await fetch(`http://127.0.0.1:${port}/hooks`, {
      method: 'POST',
      headers: {
        'webhook-id': 'msg_forged',
        'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
        'webhook-signature': `v1,${'A'.repeat(43)}=`,
      },
      body,
    });
    expect(res.status).to.equal(401);
    expect(output).not.to.include('mallory');
  });
});
