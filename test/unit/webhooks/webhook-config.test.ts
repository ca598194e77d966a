import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { parseWebhookConfig, WebhookConfigError } from '../../../src/webhooks/webhook-config.js';
import { errorOf } from '../../helpers/errors.js';

const secret = () => randomBytes(32).toString('base64');
const target = (fields: Record<string, unknown> = {}) => ({
  url: 'https://hooks.example.com/notify',
  events: ['connected'],
  secret: secret(),
  ...fields,
});

function configError(raw: unknown): WebhookConfigError {
  const error = errorOf(() => parseWebhookConfig(raw));
  expect(error).to.be.instanceOf(WebhookConfigError);
  return error as WebhookConfigError;
}

describe('parseWebhookConfig', () => {
  it('fills in the defaults and keeps the secret as a key object', () => {
    const [parsed] = parseWebhookConfig({ targets: [target({ topics: ['rooms/**'] })] });
    expect(parsed!.name).to.equal('0');
    expect(parsed!.url.href).to.equal('https://hooks.example.com/notify');
    expect([...parsed!.events]).to.deep.equal(['connected']);
    expect(parsed!.topics!.map((selector) => selector.source)).to.deep.equal(['rooms/**']);
    expect(parsed!.signingKeys).to.have.length(1);
    expect(parsed!.signingKeys[0]!.type).to.equal('secret');
    expect(parsed).to.include({
      allowPrivateNetwork: false,
      timeoutMs: 10_000,
      maxConcurrentRequests: 1,
      maxBatchEvents: 100,
      lingerMs: 50,
      maxQueuedEvents: 10_000,
      maxAttempts: 10,
      maxAgeMs: 900_000,
      retryInitialDelayMs: 1000,
      retryMaxDelayMs: 60_000,
    });
  });

  it('signs with previous secrets too during a rotation', () => {
    const [parsed] = parseWebhookConfig({ targets: [target({ previousSecrets: [secret(), secret()] })] });
    expect(parsed!.signingKeys).to.have.length(3);
  });

  it('refuses a URL that is not http or https, naming the entry index and field', () => {
    for (const url of [
      'ftp://hooks.example.com/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'gopher://example.com/',
      'ws://example.com/',
    ]) {
      const error = configError({ targets: [target(), target({ url })] });
      expect(error.code).to.equal('invalid_webhook_config');
      expect(error, url).to.include({ path: 'targets[1].url', index: 1, field: 'url', reason: 'url_scheme' });
      expect(error.message).to.match(/^targets\[1\]\.url: /);
    }
    expect(configError({ targets: [target({ url: '/relative' })] }).reason).to.equal('invalid_url');
  });

  it('refuses credentials and fragments in the URL', () => {
    expect(configError({ targets: [target({ url: 'https://user:pw@hooks.example.com/' })] }).reason).to.equal('url_credentials');
    expect(configError({ targets: [target({ url: 'https://hooks.example.com/#x' })] }).reason).to.equal('url_fragment');
  });

  it('refuses loopback, private and link-local literal addresses unless allowPrivateNetwork is set', () => {
    const addresses = [
      'http://127.0.0.1:8080/',
      'http://127.1/',
      'http://2130706433/',
      'http://0x7f000001/',
      'http://10.1.2.3/',
      'http://172.16.0.1/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://100.64.0.1/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::127.0.0.1]/',
      'http://[2002:c0a8:101::1]/',
      'http://[fe80::1]/',
      'http://[fd00::1]/',
      'http://[64:ff9b::10.0.0.1]/',
      'http://localhost:3000/',
      'http://api.localhost/',
    ];
    for (const url of addresses) {
      expect(configError({ targets: [target({ url })] }), url).to.include({ path: 'targets[0].url', reason: 'private_address' });
      expect(parseWebhookConfig({ targets: [target({ url, allowPrivateNetwork: true })] }), url).to.have.length(1);
    }
  });

  it('refuses unspecified, multicast and broadcast addresses even with allowPrivateNetwork', () => {
    for (const url of ['http://0.0.0.0/', 'http://[::]/', 'http://224.0.0.1/', 'http://255.255.255.255/', 'http://[ff02::1]/']) {
      expect(configError({ targets: [target({ url, allowPrivateNetwork: true })] }), url).to.include({ reason: 'reserved_address' });
    }
  });

  it('accepts public literal addresses and names without DNS at start', () => {
    expect(
      parseWebhookConfig({ targets: [target({ url: 'https://93.184.215.14/' }), target({ url: 'https://[2606:4700::1111]/' })] }),
    ).to.have.length(2);
  });

  it('names the field of a bad secret, event kind, topic selector or number', () => {
    expect(configError({ targets: [target({ secret: 'correct horse battery staple' })] })).to.include({
      path: 'targets[0].secret',
      reason: 'secret_encoding',
    });
    expect(configError({ targets: [target({ secret: 'ThisIsAVeryLongAndSecureWebhookSecretKey2026' })] })).to.include({
      path: 'targets[0].secret',
      reason: 'secret_not_random',
    });
    expect(configError({ targets: [target({ previousSecrets: ['short'] })] }).path).to.equal('targets[0].previousSecrets[0]');
    expect(configError({ targets: [target({ events: ['connected', 'published'] })] }).path).to.equal('targets[0].events[1]');
    expect(configError({ targets: [target({ events: [] })] }).path).to.equal('targets[0].events');
    expect(configError({ targets: [target({ events: ['connected', 'connected'] })] }).path).to.equal('targets[0].events');
    expect(configError({ targets: [target({ topics: ['rooms/**', 'a/**/b'] })] })).to.include({
      path: 'targets[0].topics[1]',
      field: 'topics[1]',
      reason: 'invalid_selector',
    });
    expect(configError({ targets: [target({ timeoutMs: 0 })] })).to.include({ path: 'targets[0].timeoutMs', reason: 'too_small' });
    expect(configError({ targets: [target({ maxConcurrentRequests: 1.5 })] }).path).to.equal('targets[0].maxConcurrentRequests');
    expect(configError({ targets: [target({ allowPrivateNetwork: 'yes' })] })).to.include({ reason: 'invalid_type' });
  });

  it('refuses settings it does not know, and inconsistent limits', () => {
    expect(configError({ targets: [target({ retries: 3 })] })).to.include({ path: 'targets[0].retries', reason: 'unrecognized_keys' });
    expect(configError({ targets: [], extra: true })).to.include({ path: 'extra', index: undefined });
    expect(configError({ targets: [target({ retryInitialDelayMs: 5000, retryMaxDelayMs: 1000 })] }).path).to.equal(
      'targets[0].retryMaxDelayMs',
    );
    expect(configError({ targets: [target({ maxBatchEvents: 500, maxQueuedEvents: 100 })] }).path).to.equal('targets[0].maxQueuedEvents');
  });

  it('refuses a file that is not an object with targets, and two targets of one name', () => {
    expect(configError([target()])).to.include({ path: '(root)', reason: 'invalid_type' });
    expect(configError({})).to.include({ path: 'targets' });
    expect(configError({ targets: [target({ name: 'app' }), target({ name: 'app' })] })).to.include({
      path: 'targets[1].name',
      reason: 'duplicate_name',
    });
    expect(configError({ targets: [target({ name: 'has space' })] }).path).to.equal('targets[0].name');
  });
});
