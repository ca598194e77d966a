import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('TLS configuration', () => {
  it('is off by default', () => {
    expect(loadConfig({}).tls).to.equal(undefined);
  });

  it('resolves both paths when both are given', () => {
    const config = loadConfig({ TLS_CERT_FILE: 'cert.pem', TLS_KEY_FILE: '/etc/notify/key.pem' });
    expect(config.tls?.certFile).to.match(/^\/.*cert\.pem$/);
    expect(config.tls?.keyFile).to.equal('/etc/notify/key.pem');
  });

  it('refuses one without the other, naming the missing key', () => {
    expect(() => loadConfig({ TLS_CERT_FILE: 'cert.pem' }))
      .to.throw(ConfigError)
      .with.property('key', 'TLS_KEY_FILE');
    expect(() => loadConfig({ TLS_KEY_FILE: 'key.pem' }))
      .to.throw(ConfigError)
      .with.property('key', 'TLS_CERT_FILE');
  });
});
