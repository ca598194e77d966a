import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { Webhook } from 'standardwebhooks';
import { signatureHeaders, verifyWebhook, WebhookVerificationError } from '../../../src/webhooks/webhook-signature.js';
import { errorOf } from '../../helpers/errors.js';

const NOW = 1_750_000_000_000;
const secret = randomBytes(32).toString('base64');
const key = createSecretKey(Buffer.from(secret, 'base64'));
const body = '{"missed":0,"events":[{"id":"evt_1","kind":"connected","subject":"alice"}]}';
const headers = signatureHeaders([key], 'msg_abc', NOW / 1000, body);

type SnippetVerify = (secret: string, headers: Record<string, string>, rawBody: string, now?: number) => boolean;

function verificationCode(fn: () => unknown): string {
  const error = errorOf(fn);
  expect(error).to.be.instanceOf(WebhookVerificationError);
  return (error as WebhookVerificationError).code;
}

describe('webhook signatures (Standard Webhooks v1)', () => {
  let snippet: SnippetVerify;
  let dir: string;

  before(async () => {
    // The README's verification code, exactly as documented: taken from README.md and run.
    const markdown = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const code = /### Verifying webhooks[\s\S]*?```js\n([\s\S]*?)```/.exec(markdown)![1]!;
    expect(code.trim().split('\n').length - 3, 'lines of the function body, besides import and braces').to.be.at.most(5);
    dir = mkdtempSync(path.join(tmpdir(), 'notify-webhook-snippet-'));
    writeFileSync(path.join(dir, 'verify.mjs'), code);
    snippet = ((await import(pathToFileURL(path.join(dir, 'verify.mjs')).href)) as { verifyNotifyWebhook: SnippetVerify })
      .verifyNotifyWebhook;
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('sends the three headers with a v1 signature', () => {
    expect(headers['webhook-id']).to.equal('msg_abc');
    expect(headers['webhook-timestamp']).to.equal(String(NOW / 1000));
    expect(headers['webhook-signature']).to.match(/^v1,[A-Za-z0-9+/]{43}=$/);
  });

  it('verifies with our verifyWebhook, the README snippet and the standardwebhooks library', () => {
    expect(verifyWebhook({ secret, headers, body, now: NOW })).to.deep.equal({ id: 'msg_abc', timestampSeconds: NOW / 1000 });
    expect(snippet(secret, headers, body, NOW)).to.equal(true);
    const fresh = signatureHeaders([key], 'msg_lib', Math.floor(Date.now() / 1000), body);
    expect(new Webhook(secret).verify(body, fresh)).to.deep.equal(JSON.parse(body));
    expect(new Webhook(`whsec_${secret}`).verify(body, fresh)).to.deep.equal(JSON.parse(body));
  });

  it('agrees with what the standardwebhooks library signs', () => {
    const theirs = new Webhook(secret).sign('msg_theirs', new Date(NOW), body);
    expect(signatureHeaders([key], 'msg_theirs', NOW / 1000, body)['webhook-signature']).to.equal(theirs);
  });

  it('refuses a changed body, another secret, a changed id and a stale or future timestamp', () => {
    expect(verificationCode(() => verifyWebhook({ secret, headers, body: body.replace('alice', 'mallory'), now: NOW }))).to.equal(
      'signature_mismatch',
    );
    expect(snippet(secret, headers, body.replace('alice', 'mallory'), NOW)).to.equal(false);
    const other = randomBytes(32).toString('base64');
    expect(verificationCode(() => verifyWebhook({ secret: other, headers, body, now: NOW }))).to.equal('signature_mismatch');
    expect(snippet(other, headers, body, NOW)).to.equal(false);
    expect(verificationCode(() => verifyWebhook({ secret, headers: { ...headers, 'webhook-id': 'msg_abd' }, body, now: NOW }))).to.equal(
      'signature_mismatch',
    );
    expect(verificationCode(() => verifyWebhook({ secret, headers, body, now: NOW + 301_000 }))).to.equal('timestamp_out_of_tolerance');
    expect(verificationCode(() => verifyWebhook({ secret, headers, body, now: NOW - 301_000 }))).to.equal('timestamp_out_of_tolerance');
    expect(snippet(secret, headers, body, NOW + 301_000)).to.equal(false);
    expect(verifyWebhook({ secret, headers, body, now: NOW + 299_000 }).id).to.equal('msg_abc');
  });

  it('refuses missing, repeated and malformed headers', () => {
    const { 'webhook-signature': _dropped, ...unsigned } = headers;
    expect(verificationCode(() => verifyWebhook({ secret, headers: unsigned, body, now: NOW }))).to.equal('missing_header');
    expect(snippet(secret, unsigned, body, NOW)).to.equal(false);
    expect(verificationCode(() => verifyWebhook({ secret, headers: { ...headers, 'webhook-id': ['a', 'b'] }, body, now: NOW }))).to.equal(
      'malformed_header',
    );
    expect(verificationCode(() => verifyWebhook({ secret, headers: { ...headers, 'webhook-timestamp': '1e9' }, body, now: NOW }))).to.equal(
      'malformed_header',
    );
    expect(
      verificationCode(() => verifyWebhook({ secret, headers: { ...headers, 'webhook-signature': 'v1a,abc v1,short' }, body, now: NOW })),
    ).to.equal('signature_mismatch');
    expect(snippet(secret, { ...headers, 'webhook-signature': 'v1,short' }, body, NOW)).to.equal(false);
  });

  it('signs with every key during a rotation, and each verifies alone', () => {
    const next = randomBytes(32).toString('base64');
    const rotated = signatureHeaders([createSecretKey(Buffer.from(next, 'base64')), key], 'msg_rot', NOW / 1000, body);
    expect(rotated['webhook-signature']!.split(' ')).to.have.length(2);
    expect(verifyWebhook({ secret, headers: rotated, body, now: NOW }).id).to.equal('msg_rot');
    expect(verifyWebhook({ secret: next, headers: rotated, body, now: NOW }).id).to.equal('msg_rot');
    expect(snippet(next, rotated, body, NOW)).to.equal(true);
  });

  it('refuses an id with a dot (it separates the signed fields)', () => {
    expect(() => signatureHeaders([key], 'msg.1', NOW / 1000, body)).to.throw(RangeError);
  });
});
