import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` (src/main.ts or src/cli/main.ts) as a real process until it exits, or until `until` matches its stdout (then SIGTERM). */
function run(script: string, args: string[], env: Record<string, string>, until?: RegExp): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, script), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (until !== undefined && until.test(stdout)) child.kill('SIGTERM');
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} did not finish: ${stdout}${stderr}`));
    }, 40_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the configuration file and `notify config check`, as real processes', function () {
  this.timeout(60_000);
  let dir: string;
  let dataDir: string;
  let cert: string;
  let key: string;
  let rsaKey: string;
  const secret = randomBytes(32).toString('base64');
  const redisPassword = `pw-${randomBytes(6).toString('hex')}`;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-config-file-'));
    dataDir = path.join(dir, 'data');
    cert = path.join(dir, 'cert.pem');
    key = path.join(dir, 'key.pem');
    rsaKey = path.join(dir, 'rsa-key.pem');
    const subject = ['-subj', '/CN=127.0.0.1', '-days', '1', '-nodes'];
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', key, '-out', cert, ...subject],
      {
        stdio: 'ignore',
      },
    );
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsaKey], { stdio: 'ignore' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function configFile(name: string, contents: string): string {
    const file = path.join(dir, name);
    writeFileSync(file, contents);
    chmodSync(file, 0o600);
    return file;
  }

  it('config check: prints the effective configuration with secrets masked and exits 0 when all is well', async () => {
    const file = configFile('good.yaml', `DATA_DIR: ${dataDir}\nJWT_ALG: HS256\nJWT_SECRET: ${secret}\nPORT: 4000\n`);
    const result = await run('src/cli/main.ts', ['config', 'check', '--config', file], {
      PORT: '4100',
      REDIS_URL: `redis://:${redisPassword}@127.0.0.1:6379`,
      METRICS: 'token',
      METRICS_TOKEN: `metrics-${secret}`,
    });
    expect(result.code, result.stdout + result.stderr).to.equal(0);
    expect(result.stdout).to.match(/PORT\s+4100\s+\[environment\]/);
    expect(result.stdout).to.match(/JWT_ALG\s+HS256\s+\[file\]/);
    expect(result.stdout).to.match(/REDIS_URL\s+redis:\/\/:\*\*\*\*@127\.0\.0\.1:6379/);
    expect(result.stdout).to.include('No problems found');
    for (const hidden of [secret, redisPassword, `metrics-${secret}`]) expect(result.stdout + result.stderr).to.not.include(hidden);
  });

  it('config check: lists every problem, each naming its setting (and the file), and exits 78', async () => {
    const file = configFile(
      'bad.json',
      JSON.stringify({
        DATA_DIR: dataDir,
        JWT_ALG: 'HS256',
        JWT_SECRET: 'my notify server jwt secret key for production 2024!',
        PROT: 3000,
      }),
    );
    const settings = await run('src/cli/main.ts', ['config', 'check', '--config', file, '--json'], {
      ACCESS_TOKEN_TTL: '20',
      EXPIRY_WARNING: '60',
    });
    expect(settings.code).to.equal(78);
    const report = JSON.parse(settings.stdout) as { problems: Array<{ key: string; file?: string }>; starts: boolean };
    expect(report.starts).to.equal(false);
    expect(report.problems.map(({ key, file: from }) => [key, from ?? 'environment'])).to.have.deep.members([
      ['PROT', file],
      ['JWT_SECRET', file],
      ['EXPIRY_WARNING', 'environment'],
    ]);
    expect(settings.stdout).to.not.include('production 2024');

    // Settings right, files wrong: a TLS pair that does not match and a user file that is not one.
    const usersFile = configFile('users.json', '{"version":1,"accounts":[{');
    const files = await run('src/cli/main.ts', ['config', 'check'], {
      DATA_DIR: dataDir,
      USERS_FILE: usersFile,
      TLS_CERT_FILE: cert,
      TLS_KEY_FILE: rsaKey,
    });
    expect(files.code).to.equal(78);
    expect(files.stdout).to.match(/error\s+TLS_KEY_FILE: .*is not the private key of the certificate/);
    expect(files.stdout).to.match(/error\s+USERS_FILE: .*users\.json/);
    expect(files.stdout).to.include('2 errors');
  });

  it('the server reads --config, lets the environment override it, and says so in its listening line', async () => {
    const file = configFile('server.yaml', `DATA_DIR: ${dataDir}\nPORT: 1\nHOST: 127.0.0.1\nLOG_FORMAT: json\n`);
    const result = await run('src/main.ts', ['--config', file], { PORT: '0' }, /"listening"/);
    const line = JSON.parse(result.stdout.split('\n').find((text) => text.includes('"listening"'))!) as Record<string, unknown>;
    expect(line.address).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(line.address).to.not.equal('http://127.0.0.1:1');
    expect(line.config).to.equal(file);
    expect(line.usersFile).to.equal(path.join(dataDir, 'users.json'));
  });

  it('`notify serve --config` starts the server from the file (NOTIFY_CONFIG loses to it)', async () => {
    const file = configFile('serve.json', JSON.stringify({ DATA_DIR: dataDir, PORT: 0 }));
    const result = await run('src/cli/main.ts', ['serve', '--config', file], { NOTIFY_CONFIG: '/nowhere.yaml' }, /"listening"/);
    expect(result.stdout).to.include(`"config":"${file}"`);
  });

  it("`notify users` reads the data directory from --config, so run from anywhere it finds the server's user file", async () => {
    const accounts = path.join(dir, 'accounts-data');
    const file = configFile('users.yaml', `DATA_DIR: ${accounts}\n`);
    const result = await run('src/cli/main.ts', ['users', 'list', '--config', file], {});
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stderr).to.include(`user file ${path.join(accounts, 'users.json')}`);
  });

  it('the server refuses a bad file entry with exit code 78, naming the file and the key, and every other problem with it', async () => {
    const file = configFile('refused.yaml', `DATA_DIR: ${dataDir}\nPORT: 70000\nHOST: [a, b]\n`);
    const result = await run('src/main.ts', ['--config', file], { LOG_LEVEL: 'loud' });
    expect(result.code).to.equal(78);
    expect(result.stderr).to.include(`configuration error: ${file}: PORT: must be at most 65535`);
    expect(result.stderr).to.include(`configuration error: ${file}: HOST: `);
    expect(result.stderr).to.match(/configuration error: LOG_LEVEL: /);
    expect(result.stdout).to.not.include('listening');
  });

  it('on a terminal (LOG_FORMAT=auto, the default) prints the banner instead of JSON (a real pty through script(1))', async () => {
    const fresh = path.join(dir, 'tty-data');
    const command = `exec ${process.execPath} --import tsx ${path.join(ROOT, 'src/main.ts')}`;
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', DATA_DIR: fresh, PORT: '0', TERM: 'dumb' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner: ${output}`)), 40_000);
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('Stop with Ctrl-C')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      expect(output).to.include('No accounts yet');
      expect(output).to.not.include('"listening"');
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
  });

  it('prints a banner with the URL, /docs, the user file and how to add the first account (LOG_FORMAT=pretty)', async () => {
    const fresh = path.join(dir, 'fresh-data');
    const result = await run('src/main.ts', [], { DATA_DIR: fresh, PORT: '0', LOG_FORMAT: 'pretty' }, /Stop with Ctrl-C/);
    expect(result.stdout).to.match(/listening\s+http:\/\/127\.0\.0\.1:\d+/);
    expect(result.stdout).to.match(/API docs\s+http:\/\/127\.0\.0\.1:\d+\/docs/);
    expect(result.stdout).to.include(`user file  ${path.join(fresh, 'users.json')} (0 users, 0 service clients)`);
    expect(result.stdout).to.include(`No accounts yet: \`notify users add NAME --role user --data-dir ${fresh}\``);
    expect(result.stdout).to.not.include('"listening"');
  });
});
