import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { ConfigError, inspectConfig, loadConfig } from '../../src/config.js';

/** A reader that knows only the given files (absolute paths). */
function files(contents: Record<string, string>): (file: string) => string {
  return (file) => {
    if (!Object.hasOwn(contents, file)) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
    return contents[file]!;
  };
}

const JSON_FILE = '/etc/notify/notify.config.json';
const YAML_FILE = '/etc/notify/notify.yaml';
const SECRET = randomBytes(32).toString('base64url');

function problemsOf(env: Record<string, string>, readFile: (file: string) => string, file?: string) {
  const report = inspectConfig({ env, readFile, ...(file === undefined ? {} : { file }) });
  expect(report.config).to.equal(undefined);
  return report.problems.map((problem) => ({ key: problem.key, file: problem.file }));
}

describe('the configuration file', () => {
  it('reads JSON named by NOTIFY_CONFIG, with numbers, true/false and lists where the settings hold them', () => {
    const config = loadConfig(
      { NOTIFY_CONFIG: JSON_FILE },
      files({
        [JSON_FILE]: JSON.stringify({
          PORT: 8080,
          TRUST_PROXY: true,
          COOKIE_SECURE: false,
          CORS_ORIGINS: ['https://a.test', 'https://b.test'],
          ACCESS_TOKEN_TTL: 600,
          HOST: '0.0.0.0',
        }),
      }),
    );
    expect(config.port).to.equal(8080);
    expect(config.trustProxy).to.equal(true);
    expect(config.cookieSecure).to.equal(false);
    expect(config.corsOrigins).to.deep.equal(['https://a.test', 'https://b.test']);
    expect(config.jwt.accessTokenTtlMs).to.equal(600_000);
    expect(config.host).to.equal('0.0.0.0');
  });

  it('reads YAML named by --config (which wins over NOTIFY_CONFIG), values written as in the environment', () => {
    const yaml = `# notify\nPORT: 9000\nJWT_ALG: HS256\nJWT_SECRET: ${SECRET}\nTRUST_PROXY: yes\nLOG_LEVEL: warn\n`;
    const config = loadConfig({ NOTIFY_CONFIG: JSON_FILE }, files({ [YAML_FILE]: yaml }), { file: YAML_FILE });
    expect(config.port).to.equal(9000);
    expect(config.jwt.alg).to.equal('HS256');
    expect(config.trustProxy).to.equal(true);
    expect(config.logLevel).to.equal('warn');
  });

  it('lets a variable that is set override the file, and an empty one not', () => {
    const readFile = files({ [YAML_FILE]: 'PORT: 9000\nHOST: 0.0.0.0\n' });
    const report = inspectConfig({ env: { NOTIFY_CONFIG: YAML_FILE, PORT: '7000', HOST: '' }, readFile });
    expect(report.config?.port).to.equal(7000);
    expect(report.config?.host).to.equal('0.0.0.0');
    expect(report.given.PORT).to.deep.equal({ value: '7000', from: 'environment' });
    expect(report.given.HOST).to.deep.equal({ value: '0.0.0.0', from: 'file' });
    expect(report.given.DATA_DIR).to.equal(undefined);
    expect(report.file).to.equal(YAML_FILE);
  });

  it('takes null or an empty string as the default, and an empty file as no settings', () => {
    const config = loadConfig({ NOTIFY_CONFIG: YAML_FILE }, files({ [YAML_FILE]: 'PORT:\nHOST: ""\n' }));
    expect(config.port).to.equal(3000);
    expect(config.host).to.equal('127.0.0.1');
    expect(loadConfig({ NOTIFY_CONFIG: JSON_FILE }, files({ [JSON_FILE]: '' })).port).to.equal(3000);
  });

  it('resolves a relative file name against the working directory', () => {
    const absolute = path.resolve('notify.yaml');
    expect(inspectConfig({ env: {}, file: 'notify.yaml', readFile: files({ [absolute]: 'PORT: 1234' }) }).config?.port).to.equal(1234);
  });

  describe('refuses, naming the file and the key', () => {
    const cases: Array<[string, string, string]> = [
      ['an unknown key', '{"PROT": 3000}', 'PROT'],
      ['a camelCase spelling of a setting', '{"accessTokenTtl": 600}', 'accessTokenTtl'],
      ['a nested object', '{"PORT": {"value": 3000}}', 'PORT'],
      ['a number where the setting holds text', '{"HOST": 127}', 'HOST'],
      ['a list where the setting holds one value', '{"HOST": ["a", "b"]}', 'HOST'],
      ['a list item holding a comma', '{"CORS_ORIGINS": ["https://a.test,https://b.test"]}', 'CORS_ORIGINS'],
      ['a number that is not whole', '{"PORT": 3000.5}', 'PORT'],
      ['a number out of range', '{"PORT": 70000}', 'PORT'],
      ['a __proto__ key', '{"__proto__": {"PORT": 1}}', '__proto__'],
      ['a weak JWT_SECRET', '{"JWT_ALG": "HS256", "JWT_SECRET": "my notify server jwt secret key for production 2024!"}', 'JWT_SECRET'],
    ];
    for (const [what, json, key] of cases) {
      it(`${what}`, () => {
        expect(problemsOf({ NOTIFY_CONFIG: JSON_FILE }, files({ [JSON_FILE]: json }))).to.deep.include({ key, file: JSON_FILE });
      });
    }

    it('suggests the environment name for a camelCase key', () => {
      const report = inspectConfig({ env: {}, file: JSON_FILE, readFile: files({ [JSON_FILE]: '{"accessTokenTtl": 600}' }) });
      expect(report.problems[0]?.message).to.include('ACCESS_TOKEN_TTL');
    });

    it('a key given twice (JSON.parse would keep the last silently)', () => {
      expect(problemsOf({}, files({ [JSON_FILE]: '{"PORT": 1, "PORT": 2}' }), JSON_FILE)).to.deep.equal([
        { key: '--config', file: undefined },
      ]);
    });

    it('a file that does not exist, is not JSON or YAML, or has another extension, naming what named it', () => {
      expect(problemsOf({ NOTIFY_CONFIG: '/nowhere.json' }, files({}))).to.deep.equal([{ key: 'NOTIFY_CONFIG', file: undefined }]);
      expect(problemsOf({}, files({ [JSON_FILE]: '{"PORT": ' }), JSON_FILE)).to.deep.equal([{ key: '--config', file: undefined }]);
      expect(problemsOf({}, files({ [YAML_FILE]: '- PORT\n- 3000\n' }), YAML_FILE)).to.deep.equal([{ key: '--config', file: undefined }]);
      expect(problemsOf({}, files({ '/etc/notify.conf': 'PORT=3000' }), '/etc/notify.conf')).to.deep.equal([
        { key: '--config', file: undefined },
      ]);
    });
  });

  it('reports every problem at once, those from the file with the file and those from the environment without', () => {
    const readFile = files({ [YAML_FILE]: 'PORT: 70000\nFOO: 1\nMAX_DATA_BYTES: 9999999\n' });
    const problems = problemsOf({ NOTIFY_CONFIG: YAML_FILE, LOG_LEVEL: 'loud', JWT_ALG: 'HS256' }, readFile);
    expect(problems).to.have.deep.members([
      { key: 'FOO', file: YAML_FILE },
      { key: 'PORT', file: YAML_FILE },
      { key: 'LOG_LEVEL', file: undefined },
    ]);
    // Once the single settings parse, the checks across them are all reported too.
    const crossing = problemsOf({ JWT_ALG: 'HS256', MAX_BODY_BYTES: '2048', MAX_DATA_BYTES: '4096', WORKERS: '2' }, readFile);
    expect(crossing).to.have.deep.members([
      { key: 'JWT_SECRET', file: undefined },
      { key: 'MAX_DATA_BYTES', file: undefined },
      { key: 'WORKERS', file: undefined },
    ]);
  });

  it('throws a ConfigError from loadConfig that names the file and the key, with every problem attached', () => {
    try {
      loadConfig({ NOTIFY_CONFIG: YAML_FILE, LOG_LEVEL: 'loud' }, files({ [YAML_FILE]: 'PORT: abc\n' }));
      expect.fail('loadConfig accepted a bad file');
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      const configError = error as ConfigError;
      expect([configError.key, configError.file]).to.deep.equal(['PORT', YAML_FILE]);
      expect(configError.message.startsWith(`${YAML_FILE}: PORT: `)).to.equal(true);
      expect(configError.problems.map((problem) => problem.key)).to.deep.equal(['PORT', 'LOG_LEVEL']);
    }
  });
});

describe('EXPIRY_WARNING and ACCESS_TOKEN_TTL', () => {
  it('defaults to 60 s, or half of a shorter token lifetime (ACCESS_TOKEN_TTL=20 warned as the stream opened)', () => {
    expect(loadConfig({}).streams.expiryWarningMs).to.equal(60_000);
    expect(loadConfig({ ACCESS_TOKEN_TTL: '20' }).streams.expiryWarningMs).to.equal(10_000);
    expect(loadConfig({ ACCESS_TOKEN_TTL: '10' }).streams.expiryWarningMs).to.equal(5_000);
    expect(loadConfig({ ACCESS_TOKEN_TTL: '120' }).streams.expiryWarningMs).to.equal(60_000);
  });

  it('accepts a set value up to half of the lifetime and refuses a larger one, naming EXPIRY_WARNING', () => {
    expect(loadConfig({ ACCESS_TOKEN_TTL: '20', EXPIRY_WARNING: '10' }).streams.expiryWarningMs).to.equal(10_000);
    for (const warning of ['11', '20', '60']) {
      expect(problemsOf({ ACCESS_TOKEN_TTL: '20', EXPIRY_WARNING: warning }, files({}))).to.deep.equal([
        { key: 'EXPIRY_WARNING', file: undefined },
      ]);
    }
  });
});

describe('the README example of a configuration file', () => {
  it('is accepted as it is written', () => {
    const readme = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md'), 'utf8');
    const example = /```yaml\n(# \/etc\/notify\/notify\.yaml\n[\s\S]*?)```/.exec(readme)?.[1];
    expect(example, 'the README has the example').to.be.a('string');
    const config = loadConfig({}, files({ [YAML_FILE]: example! }), { file: YAML_FILE });
    expect(config.corsOrigins).to.have.length(2);
    expect(config.trustProxy).to.equal(true);
  });
});
