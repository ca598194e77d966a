import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { IssuerConfigError, keyUrlProblem, parseIssuers, type IssuerConfig } from '../../../src/auth/issuer-config.js';
import { DEFAULT_ROLES } from '../../../src/auth/role-table.js';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { errorOf } from '../../helpers/errors.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const files: Record<string, string> = {
  '/etc/notify/rsa.pem': rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  '/etc/notify/private.pem': rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  '/etc/notify/ec.jwks': JSON.stringify({ keys: [{ ...ec.publicKey.export({ format: 'jwk' }), kid: 'k1' }] }),
  '/etc/notify/private.jwks': JSON.stringify({ keys: [{ ...ec.privateKey.export({ format: 'jwk' }), kid: 'k1' }] }),
};
const readFile = (file: string) => {
  if (!Object.hasOwn(files, file)) throw new Error(`ENOENT: ${file}`);
  return files[file]!;
};
const options = { readFile, knownRoles: Object.keys(DEFAULT_ROLES), ownIssuer: 'https://notify.example', baseDir: '/etc/notify' };

const entry = (overrides: Record<string, unknown> = {}) => ({
  alias: 'kc',
  issuer: 'https://sso.example/realms/acme',
  audience: 'notify',
  algorithms: ['RS256'],
  keys: { discovery: true },
  grants: { roles: { claim: 'realm_access.roles', map: { 'notify-user': 'user' } } },
  ...overrides,
});

function parseOne(overrides: Record<string, unknown> = {}): IssuerConfig {
  return parseIssuers({ issuers: [entry(overrides)] }, options)[0]!;
}

function problem(raw: unknown): IssuerConfigError {
  const error = errorOf(() => parseIssuers(raw, options));
  expect(error).to.be.instanceOf(IssuerConfigError);
  return error as IssuerConfigError;
}

describe('issuer-config', () => {
  it('fills the documented defaults', () => {
    const config = parseOne();
    expect(config).to.deep.include({ type: 'at+jwt', clockToleranceMs: 5000, maxTokenLifetimeMs: 3_600_000, insecureHttp: false });
    expect(config.subject).to.deep.equal({ claim: ['sub'], prefix: 'kc~', encoding: 'plain' });
    expect(config.acceptAs).to.deep.equal(['bearer', 'subject_token']);
    expect(config.fetch).to.deep.equal({ cooldownMs: 30_000, cacheMaxAgeMs: 600_000, timeoutMs: 5_000, maxBytes: 256 * 1024 });
    expect(config.grants.roles!.claim).to.deep.equal(['realm_access', 'roles']);
    expect(config.audience).to.deep.equal(['notify']);
  });

  it('takes a claim path as segments when a key holds dots (Auth0 namespaced claims)', () => {
    const config = parseOne({ grants: { roles: { claim: ['https://notify.example/roles'], map: { admins: ['admin', 'user'] } } } });
    expect(config.grants.roles!.claim).to.deep.equal(['https://notify.example/roles']);
    expect(config.grants.roles!.map.admins).to.deep.equal(['admin', 'user']);
  });

  for (const [what, overrides, field] of [
    ['alg none', { algorithms: ['none'] }, 'algorithms[0]'],
    ['HS256 (a public key must never be an HMAC secret)', { algorithms: ['HS256'] }, 'algorithms[0]'],
    ['an empty algorithm list', { algorithms: [] }, 'algorithms'],
    ['an unknown field', { jku: 'https://evil.example' }, ''],
    ['a missing audience', { audience: undefined }, 'audience'],
    ['an alias that is not topic-safe', { alias: 'Key Cloak' }, 'alias'],
    ['a prefix with a slash', { subject: { prefix: 'kc/' } }, 'subject.prefix'],
    ['no grant source', { grants: {} }, 'grants'],
    ['a fixed grant that is not a selector', { grants: { fixed: { subscribe: ['users/**/x'] } } }, 'grants.fixed.subscribe[0]'],
    ['a placeholder other than {sub}', { grants: { fixed: { subscribe: ['users/{name}/**'] } } }, 'grants.fixed.subscribe[0]'],
    ['a map to a role the table lacks', { grants: { roles: { claim: 'groups', map: { x: 'superuser' } } } }, 'grants.roles.map.x'],
    ['two key sources at once', { keys: { discovery: true, jwksUri: 'https://sso.example/jwks' } }, 'keys'],
    ['a jwks_uri over plain http on another host', { keys: { jwksUri: 'http://10.0.0.1/jwks' } }, 'keys.jwksUri'],
    ['a jwks_uri with credentials', { keys: { jwksUri: 'https://user:pw@sso.example/jwks' } }, 'keys.jwksUri'],
    ['a file: jwks_uri', { keys: { jwksUri: 'file:///etc/passwd' } }, 'keys.jwksUri'],
    ['discovery from an issuer that is not a URL', { issuer: 'acme-sso' }, 'issuer'],
    ['a PEM file with a private key', { keys: { pemFile: 'private.pem' } }, 'keys.pemFile'],
    ['a JWKS with private members', { algorithms: ['ES256'], keys: { jwksFile: 'private.jwks' } }, 'keys.jwksFile keys[0]'],
    ['a key file that does not exist', { keys: { pemFile: 'missing.pem' } }, 'keys.pemFile'],
    [
      'an algorithm the key type does not have (ES256 with an RSA key)',
      { algorithms: ['ES256'], keys: { pemFile: 'rsa.pem' } },
      'algorithms',
    ],
    [
      'an algorithm the key type does not have (RS256 with an EC key)',
      { algorithms: ['RS256'], keys: { jwksFile: 'ec.jwks' } },
      'algorithms',
    ],
    ['our own issuer', { issuer: 'https://notify.example' }, 'issuer'],
    ['a timeout of 0', { fetch: { timeoutMs: 0 } }, 'fetch.timeoutMs'],
    ['a response bound of 100 MB', { fetch: { maxBytes: 100 * 1024 * 1024 } }, 'fetch.maxBytes'],
  ] as const) {
    it(`refuses ${what}, naming the entry and the field`, () => {
      const error = problem({ issuers: [entry(overrides)] });
      expect(error.entry).to.match(/^issuers\[0\]( \(kc\))?$/);
      expect(error.field).to.equal(field);
    });
  }

  it('refuses a duplicate alias and a duplicate issuer, naming the later entry', () => {
    expect(problem({ issuers: [entry(), entry({ issuer: 'https://other.example' })] })).to.deep.include({
      entry: 'issuers[1] (kc)',
      field: 'alias',
    });
    expect(problem({ issuers: [entry(), entry({ alias: 'kc2' })] })).to.deep.include({ entry: 'issuers[1] (kc2)', field: 'issuer' });
  });

  it('accepts static keys whose type fits every allowed algorithm', () => {
    expect(parseOne({ keys: { pemFile: 'rsa.pem' }, algorithms: ['RS256', 'PS256'] }).keys.kind).to.equal('pem');
    expect(parseOne({ keys: { jwksFile: '/etc/notify/ec.jwks' }, algorithms: ['ES256'] }).keys.kind).to.equal('jwks');
  });

  it('allows http key URLs on loopback only, unless insecureHttp says otherwise', () => {
    expect(keyUrlProblem('http://127.0.0.1:8080/jwks', false)).to.equal(undefined);
    expect(keyUrlProblem('http://localhost/jwks', false)).to.equal(undefined);
    expect(keyUrlProblem('http://keycloak:8080/jwks', false)).to.be.a('string');
    expect(keyUrlProblem('http://keycloak:8080/jwks', true)).to.equal(undefined);
    expect(keyUrlProblem('https://sso.example/jwks#frag', false)).to.be.a('string');
  });

  describe('through loadConfig', () => {
    it('turns a bad ISSUERS_FILE into a ConfigError naming ISSUERS_FILE, the entry and the field', () => {
      const text = JSON.stringify({ issuers: [entry({ algorithms: ['HS256'] })] });
      const error = errorOf(() => loadConfig({ ISSUERS_FILE: '/etc/notify/issuers.json' }, () => text));
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).key).to.equal('ISSUERS_FILE');
      expect((error as Error).message).to.match(/^ISSUERS_FILE: issuers\[0\] \(kc\): algorithms\[0\]/);
    });

    it('refuses a file that is not JSON, naming ISSUERS_FILE', () => {
      const error = errorOf(() => loadConfig({ ISSUERS_FILE: '/etc/notify/issuers.json' }, () => '{ nope'));
      expect((error as ConfigError).key).to.equal('ISSUERS_FILE');
    });

    it('checks role names against ROLES_FILE when both are given', () => {
      const roles = JSON.stringify({ reader: { subscribe: ['public/**'] } });
      const issuers = JSON.stringify({ issuers: [entry()] });
      const error = errorOf(() =>
        loadConfig({ ROLES_FILE: '/r.json', ISSUERS_FILE: '/i.json' }, (file) => (file === '/r.json' ? roles : issuers)),
      );
      expect((error as Error).message).to.match(/grants\.roles\.map\.notify-user: role "user" is not in the role table/);
    });

    it('gives an empty list without ISSUERS_FILE', () => {
      expect(loadConfig({}).issuers).to.deep.equal([]);
    });
  });
});
