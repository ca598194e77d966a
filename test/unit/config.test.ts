import { expect } from 'chai';
import path from 'node:path';
import { DEFAULT_ROLES } from '../../src/auth/role-table.js';
import { parseRedisTarget } from '../../src/redis-target.js';
import { loadConfig } from '../../src/config.js';
import { configError } from '../helpers/config.js';

// 32 distinct bytes: a secret of one repeated byte is refused as not random (config.ts).
const SECRET_32_BYTES = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff));
const SECRET_32_HEX = SECRET_32_BYTES.toString('hex');
const SECRET_31_HEX = 'ab'.repeat(31);

describe('loadConfig', () => {
  describe('defaults', () => {
    it('uses safe defaults when the environment is empty', () => {
      const config = loadConfig({});
      expect(config.port).to.equal(3000);
      expect(config.host).to.equal('127.0.0.1');
      expect(config.dataDir).to.equal(path.resolve('./data'));
      expect(config.usersFile).to.equal(path.resolve('./data', 'users.json'));
      expect(config.roles).to.deep.equal(DEFAULT_ROLES);
      expect(config.logLevel).to.equal('info');
      expect(config.trustProxy).to.equal(false);
      expect(config.corsOrigins).to.deep.equal([]);
      expect(config.cookieSecure).to.equal('auto');
      expect(config.jwt).to.deep.equal({
        alg: 'EdDSA',
        secret: undefined,
        issuer: 'http://127.0.0.1:3000',
        audience: 'notify',
        accessTokenTtlMs: 300_000,
        clockToleranceMs: 5000,
      });
      expect(config.refreshToken).to.deep.equal({ idleTtlMs: 86_400_000, absoluteTtlMs: 30 * 86_400_000 });
      expect(config.limits).to.deep.equal({ maxBodyBytes: 65536, maxDataBytes: 32768, maxTopicsPerRequest: 16 });
      expect(config.history).to.deep.equal({
        size: 1000,
        ttlMs: 3_600_000,
        maxTopics: 10_000,
        maxBytes: 256 * 1024 * 1024,
        idempotencyTtlMs: 86_400_000,
        idempotencyMaxKeys: 100_000,
      });
      expect(config.streams.heartbeatIntervalMs).to.equal(15_000);
      expect(config.backend).to.deep.equal({ kind: 'sqlite', file: path.resolve('./data', 'notify.db'), fsync: 'always' });
    });

    it('treats an empty value as unset', () => {
      expect(loadConfig({ PORT: '', JWT_SECRET: '' }).port).to.equal(3000);
    });

    it('parses given values when they are valid', () => {
      const config = loadConfig({
        PORT: '8080',
        TRUST_PROXY: 'yes',
        CORS_ORIGINS: 'https://a.test, https://b.test,',
        COOKIE_SECURE: 'false',
        PUBLIC_ORIGIN: 'https://notify.example',
        ACCESS_TOKEN_TTL: '10',
      });
      expect(config.port).to.equal(8080);
      expect(config.trustProxy).to.equal(true);
      expect(config.corsOrigins).to.deep.equal(['https://a.test', 'https://b.test']);
      expect(config.cookieSecure).to.equal(false);
      expect(config.jwt.issuer).to.equal('https://notify.example');
      expect(config.jwt.accessTokenTtlMs).to.equal(10_000);
    });
  });

  describe('bad values', () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['PORT is not a number', { PORT: 'abc' }, 'PORT'],
      ['PORT is out of range', { PORT: '70000' }, 'PORT'],
      // Number(' ') is 0: a blank value must not silently mean "any free port".
      ['PORT is only whitespace', { PORT: ' ' }, 'PORT'],
      ['ACCESS_TOKEN_TTL is below 10 seconds', { ACCESS_TOKEN_TTL: '5' }, 'ACCESS_TOKEN_TTL'],
      ['ACCESS_TOKEN_TTL is not an integer', { ACCESS_TOKEN_TTL: '60.5' }, 'ACCESS_TOKEN_TTL'],
      ['JWT_ALG is none', { JWT_ALG: 'none' }, 'JWT_ALG'],
      ['JWT_ALG is HS256 without a secret', { JWT_ALG: 'HS256' }, 'JWT_SECRET'],
      ['JWT_ALG is HS256 with a 31-byte secret', { JWT_ALG: 'HS256', JWT_SECRET: SECRET_31_HEX }, 'JWT_SECRET'],
      ['JWT_ALG is HS256 with a short passphrase', { JWT_ALG: 'HS256', JWT_SECRET: 'secret' }, 'JWT_SECRET'],
      ['JWT_SECRET is given with EdDSA', { JWT_SECRET: SECRET_32_HEX }, 'JWT_SECRET'],
      ['JWT_SECRET is given with ES256', { JWT_ALG: 'ES256', JWT_SECRET: SECRET_32_HEX }, 'JWT_SECRET'],
      [
        'REFRESH_TOKEN_ABSOLUTE_TTL is shorter than the idle ttl',
        { REFRESH_TOKEN_IDLE_TTL: '7200', REFRESH_TOKEN_ABSOLUTE_TTL: '3600' },
        'REFRESH_TOKEN_ABSOLUTE_TTL',
      ],
      ['MAX_DATA_BYTES is larger than MAX_BODY_BYTES', { MAX_BODY_BYTES: '2048', MAX_DATA_BYTES: '4096' }, 'MAX_DATA_BYTES'],
      ['LOG_LEVEL is unknown', { LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
      ['TRUST_PROXY is not a boolean', { TRUST_PROXY: 'maybe' }, 'TRUST_PROXY'],
      ['PUBLIC_ORIGIN is not a URL', { PUBLIC_ORIGIN: 'not a url' }, 'PUBLIC_ORIGIN'],
      ['REDIS_URL has another scheme', { REDIS_URL: 'http://127.0.0.1:6379' }, 'REDIS_URL'],
      ['REDIS_URL names a cluster node without a port', { REDIS_URL: 'redis+cluster://127.0.0.1:7000,127.0.0.1' }, 'REDIS_URL'],
      ['REDIS_URL names sentinels without the master name', { REDIS_URL: 'redis+sentinel://127.0.0.1:26379' }, 'REDIS_URL'],
      ['REDIS_URL gives a cluster a database', { REDIS_URL: 'redis+cluster://127.0.0.1:7000/2' }, 'REDIS_URL'],
      ['REDIS_PARTITIONS is 0', { REDIS_URL: 'redis://127.0.0.1', REDIS_PARTITIONS: '0' }, 'REDIS_PARTITIONS'],
      ['REDIS_WAIT_REPLICAS is negative', { REDIS_URL: 'redis://127.0.0.1', REDIS_WAIT_REPLICAS: '-1' }, 'REDIS_WAIT_REPLICAS'],
      ['STORE is unknown', { STORE: 'postgres' }, 'STORE'],
      ['STORE=redis has no REDIS_URL', { STORE: 'redis' }, 'REDIS_URL'],
      ['REDIS_URL is given with STORE=sqlite', { STORE: 'sqlite', REDIS_URL: 'redis://127.0.0.1:6379' }, 'REDIS_URL'],
      ['REDIS_URL is given with STORE=memory', { STORE: 'memory', REDIS_URL: 'redis://127.0.0.1:6379' }, 'REDIS_URL'],
      ['WORKERS is more than one on the SQLite store', { WORKERS: '2' }, 'WORKERS'],
      ['STORE_FSYNC is unknown', { STORE_FSYNC: 'never' }, 'STORE_FSYNC'],
      ['HISTORY_MAX_BYTES is below 1 MiB', { HISTORY_MAX_BYTES: '1000' }, 'HISTORY_MAX_BYTES'],
      [
        'HISTORY_MAX_BYTES is smaller than MAX_DATA_BYTES',
        { HISTORY_MAX_BYTES: String(2 ** 20), MAX_BODY_BYTES: String(2 ** 22), MAX_DATA_BYTES: String(2 ** 21) },
        'HISTORY_MAX_BYTES',
      ],
    ];
    for (const [when, env, key] of cases) {
      it(`names ${key} when ${when}`, () => {
        expect(configError(env).key).to.equal(key);
      });
    }

    it('takes a single Redis, Sentinel or Cluster from REDIS_URL alone', () => {
      for (const url of [
        'redis://:pw@127.0.0.1:6379/1',
        'redis+sentinel://u:p%40ss@10.0.0.1:26379,[::1]:26380/mymaster',
        'redis+cluster://a.example:7000,b.example:7001',
      ]) {
        const config = loadConfig({ REDIS_URL: url });
        expect(config.backend, url).to.deep.include({ kind: 'redis', url, partitions: 16, streamMaxLen: 10_000, waitReplicas: 0 });
      }
      expect(parseRedisTarget('redis+sentinel://u:p%40ss@10.0.0.1:26379,[::1]:26380/mymaster')).to.deep.equal({
        kind: 'sentinel',
        sentinels: [
          { host: '10.0.0.1', port: 26379 },
          { host: '::1', port: 26380 },
        ],
        name: 'mymaster',
        auth: { username: 'u', password: 'p@ss' },
        tls: false,
      });
      expect(parseRedisTarget('rediss+cluster://:secret@a:7000,b:7001')).to.deep.equal({
        kind: 'cluster',
        nodes: [
          { host: 'a', port: 7000 },
          { host: 'b', port: 7001 },
        ],
        auth: { password: 'secret' },
        tls: true,
      });
    });

    it('accepts HS256 when the secret is 32 bytes as hex, base64url or base64', () => {
      const bytes = SECRET_32_BYTES;
      for (const encoded of [SECRET_32_HEX, bytes.toString('base64url'), bytes.toString('base64')]) {
        const config = loadConfig({ JWT_ALG: 'HS256', JWT_SECRET: encoded });
        expect(config.jwt.secret, encoded).to.have.length(32);
      }
      expect(Buffer.from(loadConfig({ JWT_ALG: 'HS256', JWT_SECRET: bytes.toString('base64') }).jwt.secret!)).to.deep.equal(bytes);
    });

    it('accepts the refresh ttls when absolute equals idle and the data limit when it equals the body limit', () => {
      const config = loadConfig({
        REFRESH_TOKEN_IDLE_TTL: '3600',
        REFRESH_TOKEN_ABSOLUTE_TTL: '3600',
        MAX_BODY_BYTES: '4096',
        MAX_DATA_BYTES: '4096',
      });
      expect(config.refreshToken).to.deep.equal({ idleTtlMs: 3_600_000, absoluteTtlMs: 3_600_000 });
      expect(config.limits.maxDataBytes).to.equal(4096);
    });
  });

  describe('STORE', () => {
    it('chooses the SQLite store in DATA_DIR by default, Redis when REDIS_URL is set, and what STORE names otherwise', () => {
      expect(loadConfig({ DATA_DIR: '/var/lib/notify' }).backend).to.deep.equal({
        kind: 'sqlite',
        file: '/var/lib/notify/notify.db',
        fsync: 'always',
      });
      expect(loadConfig({ STORE_FSYNC: 'everysec' }).backend).to.include({ kind: 'sqlite', fsync: 'everysec' });
      expect(loadConfig({ STORE: 'memory' }).backend).to.deep.equal({ kind: 'memory' });
      const redis = {
        kind: 'redis',
        url: 'redis://10.0.0.5:6379',
        target: { kind: 'single', url: 'redis://10.0.0.5:6379' },
        keyPrefix: 'notify:',
        partitions: 16,
        streamMaxLen: 10_000,
        waitReplicas: 0,
      };
      expect(loadConfig({ REDIS_URL: 'redis://10.0.0.5:6379' }).backend).to.deep.equal(redis);
      expect(loadConfig({ STORE: 'redis', REDIS_URL: 'redis://10.0.0.5:6379' }).backend).to.deep.equal(redis);
      expect(loadConfig({ REDIS_URL: 'redis://10.0.0.5:6379', WORKERS: '3' }).workers).to.equal(3);
    });
  });

  describe('ROLES_FILE', () => {
    const env = { ROLES_FILE: '/etc/notify/roles.json' };

    it('reads the role table through the injected reader when ROLES_FILE is set', () => {
      const files: string[] = [];
      const table = { reader: { subscribe: ['public/**'] } };
      const config = loadConfig(env, (file) => {
        files.push(file);
        return JSON.stringify(table);
      });
      expect(files).to.deep.equal(['/etc/notify/roles.json']);
      expect(config.roles).to.deep.equal({ reader: { publish: [], subscribe: ['public/**'], presence: [] } });
    });

    it('names the file, the role and the selector in the message when a selector is bad', () => {
      const error = configError(env, () => JSON.stringify({ user: { subscribe: ['public/**', 'users/a*'] } }));
      expect(error.key).to.equal('ROLES_FILE');
      expect(error.message).to.include('/etc/notify/roles.json').and.include('user.subscribe.1');
    });

    it('names ROLES_FILE when the file is not JSON', () => {
      expect(configError(env, () => '{ "user": ').key).to.equal('ROLES_FILE');
    });

    it('names ROLES_FILE when the file cannot be read', () => {
      const error = configError(env, () => {
        throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      });
      expect(error.key).to.equal('ROLES_FILE');
    });

    for (const [when, content] of [
      ['a role is not an object', { user: 'public/**' }],
      ['publish is not a list', { user: { publish: 'public/**' } }],
      ['a selector is not a string', { user: { subscribe: [42] } }],
      ['a role has an unknown field', { user: { subscribe: [], admin: true } }],
      ['a role name is not lower-case', { Admin: { subscribe: [] } }],
      ['the table is a list', [{ subscribe: [] }]],
      // Checked inside config loading, so a bad selector exits 78 naming the file, not 1 "failed to start".
      ['a selector is not a valid selector', { user: { subscribe: ['users//inbox'] } }],
      ['a selector has a placeholder other than {sub}', { user: { subscribe: ['users/{user}/**'] } }],
      ['{sub} is part of a segment', { user: { subscribe: ['users/x{sub}/**'] } }],
    ] as const) {
      it(`names ROLES_FILE when ${when}`, () => {
        expect(configError(env, () => JSON.stringify(content)).key).to.equal('ROLES_FILE');
      });
    }
  });
});
