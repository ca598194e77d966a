import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FileUserStore } from '../../../src/auth/file-user-store.js';
import { verifyPassword } from '../../../src/auth/password.js';
import { addClient } from '../../../src/cli/clients-command.js';
import type { AccountServices, CliCommand } from '../../../src/cli/command.js';
import { builtinCommands, runCli } from '../../../src/cli/run-cli.js';
import { addUser } from '../../../src/cli/users-command.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const PASSWORD = 'correct horse battery';
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** A writable that remembers what was written. */
function capture(): PassThrough & { text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return Object.assign(stream, { text: () => Buffer.concat(chunks).toString('utf8') });
}

/** A stdin: piped (ended after `input`) or a fake terminal that stays open. */
function stdinOf(input: string, options: { tty?: boolean } = {}): PassThrough & { isTTY?: boolean } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean };
  if (options.tty === true) {
    stream.isTTY = true;
    stream.write(input);
  } else {
    stream.end(input);
  }
  return stream;
}

describe('notify CLI (in-process)', () => {
  let dir: string;
  let store: FileUserStore;
  let opened: number;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'notify-cli-'));
    store = new FileUserStore({ file: path.join(dir, 'users.json') });
    opened = 0;
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  function services(extra: Partial<AccountServices> = {}): AccountServices {
    return { store, scryptLogN: 10, knownRoles: ['user', 'publisher', 'admin'], ...extra };
  }

  async function run(argv: string[], input = '', options: { tty?: boolean; services?: Partial<AccountServices> } = {}) {
    const stdout = capture();
    const stderr = capture();
    const stdin = stdinOf(input, options);
    const code = await runCli(argv, {
      stdin,
      stdout,
      stderr,
      openServices: () => {
        opened += 1;
        return services(options.services);
      },
    });
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  }

  describe('usage', () => {
    it('prints help on stdout with exit 0 for the program, each command and each subcommand', async () => {
      for (const argv of [['--help'], ['users', '--help'], ['clients', '-h']]) {
        const result = await run(argv);
        expect(result.code, argv.join(' ')).to.equal(0);
        expect(result.stdout, argv.join(' ')).to.match(/^Usage: notify/);
      }
      for (const command of builtinCommands()) {
        const help = (await run([command.name, '--help'])).stdout;
        expect(help, command.name).to.match(/^Usage: notify /);
        if (!help.includes('\nCommands:\n')) continue; // a single command (`notify publish`), no subcommands
        const subcommands = help.match(/^ {2}([a-z]+) /gm) ?? [];
        expect(subcommands.length, command.name).to.be.greaterThan(0); // `notify config` has one: check
        for (const sub of subcommands.map((line) => line.trim())) {
          const result = await run([command.name, sub, '--help']);
          expect(result.code, `${command.name} ${sub}`).to.equal(0);
          expect(result.stdout).to.include(`Usage: notify ${command.name} ${sub}`);
        }
      }
      expect(opened).to.equal(0);
    });

    it('exits 2 with a message on stderr when the command, option or arguments are wrong', async () => {
      for (const argv of [
        [],
        ['frobnicate'],
        ['users'],
        ['users', 'frobnicate'],
        ['users', 'add'],
        ['users', 'add', 'alice', 'bob'],
        ['users', 'add', 'alice', '--password', 'x'],
        ['users', 'add', 'alice', '--role'],
        ['users', 'roles', 'alice'],
        ['users', 'list', 'extra'],
        ['clients', 'rotate'],
      ]) {
        const result = await run(argv, `${PASSWORD}\n`);
        expect(result.code, argv.join(' ')).to.equal(2);
        expect(result.stderr, argv.join(' ')).to.match(/^notify: .+\nRun 'notify.* --help' for usage\.\n$/);
        expect(result.stdout, argv.join(' ')).to.equal('');
      }
      expect(opened).to.equal(0);
      expect(await store.list()).to.deep.equal([]);
    });

    it('does not echo an extra argument, which may be a misplaced password', async () => {
      const result = await run(['users', 'add', 'alice', PASSWORD]);
      expect(result.code).to.equal(2);
      expect(result.stderr).not.to.include(PASSWORD);
    });

    it('exits 1 with the message when the configuration cannot be loaded', async () => {
      const stderr = capture();
      const code = await runCli(['users', 'list'], {
        stdin: stdinOf(''),
        stdout: capture(),
        stderr,
        openServices: () => {
          throw new Error('SCRYPT_LOG_N: too big');
        },
      });
      expect(code).to.equal(1);
      expect(stderr.text()).to.equal('notify: SCRYPT_LOG_N: too big\n');
    });

    it('runs a command added to the command table', async () => {
      const hello: CliCommand = {
        name: 'hello',
        summary: 'Say hello.',
        async run(argv, context) {
          context.stdout.write(`hello ${argv.join(' ')}\n`);
          return 3;
        },
      };
      const stdout = capture();
      const code = await runCli(
        ['hello', 'world'],
        {
          stdin: stdinOf(''),
          stdout,
          stderr: capture(),
          openServices: () => services(),
        },
        [...builtinCommands(), hello],
      );
      expect(code).to.equal(3);
      expect(stdout.text()).to.equal('hello world\n');
    });
  });

  describe('users add', () => {
    it('creates a user with role user from the first line of piped stdin', async () => {
      const result = await run(['users', 'add', 'alice'], `${PASSWORD}\nsecond line\n`);
      expect(result.code).to.equal(0);
      const account = await store.get('alice');
      expect(account).to.include({ name: 'alice', kind: 'user' });
      expect(account?.roles).to.deep.equal(['user']);
      expect(await verifyPassword(PASSWORD, account!.passwordHash)).to.equal(true);
      expect(account!.passwordHash).to.match(/^\$scrypt\$ln=10,/);
      expect(result.stdout + result.stderr).not.to.include(PASSWORD);
    });

    it('accepts a last line without a newline and strips a CRLF ending', async () => {
      expect((await run(['users', 'add', 'alice'], PASSWORD)).code).to.equal(0);
      expect((await run(['users', 'add', 'bob'], `${PASSWORD}\r\n`)).code).to.equal(0);
      expect(await verifyPassword(PASSWORD, (await store.get('alice'))!.passwordHash)).to.equal(true);
      expect(await verifyPassword(PASSWORD, (await store.get('bob'))!.passwordHash)).to.equal(true);
    });

    it('grants the roles given with --role and -r', async () => {
      const result = await run(['users', 'add', 'alice', '--role', 'admin', '-r', 'publisher'], `${PASSWORD}\n`);
      expect(result.code, result.stderr).to.equal(0);
      expect((await store.get('alice'))?.roles).to.deep.equal(['admin', 'publisher']);
    });

    it('exits 2 without asking for a password, naming the known roles, when a role is not in the role table', async () => {
      for (const argv of [
        ['users', 'add', 'carol', '--role', 'superuser'],
        ['clients', 'add', 'svc', '--role', 'user', '--role', 'superuser'],
      ]) {
        const result = await run(argv, `${PASSWORD}\n`, { tty: true });
        expect(result.code, argv.join(' ')).to.equal(2);
        expect(result.stderr).to.include('"superuser"');
        expect(result.stderr).to.include('user, publisher, admin');
        expect(result.stderr).not.to.include('password');
      }
      await run(['users', 'add', 'alice'], `${PASSWORD}\n`);
      expect((await run(['users', 'roles', 'alice', 'superuser'])).code).to.equal(2);
      expect((await store.list()).map((account) => [account.name, account.roles])).to.deep.equal([['alice', ['user']]]);
    });

    it('exits 1 without asking for a password when the account exists', async () => {
      await run(['users', 'add', 'alice'], `${PASSWORD}\n`);
      const before = await store.get('alice');
      const result = await run(['users', 'add', 'alice'], 'other password\n', { tty: true });
      expect(result.code).to.equal(1);
      expect(result.stderr).to.equal('notify: An account named "alice" already exists.\n');
      expect(await store.get('alice')).to.deep.equal(before);
    });

    it('exits 1 when the name or a role is invalid', async () => {
      const badName = await run(['users', 'add', 'Alice'], `${PASSWORD}\n`);
      const badRole = await run(['users', 'add', 'alice', '--role', 'Admin'], `${PASSWORD}\n`);
      expect([badName.code, badRole.code]).to.deep.equal([1, 1]);
      expect(await store.list()).to.deep.equal([]);
    });

    it('exits 1 when stdin is empty or the password is too short', async () => {
      expect((await run(['users', 'add', 'alice'], '')).code).to.equal(1);
      const short = await run(['users', 'add', 'alice'], 'short\n');
      expect(short.code).to.equal(1);
      expect(short.stderr).to.include('at least 8 characters');
      expect(await store.list()).to.deep.equal([]);
    });

    it('prompts twice on a terminal without echoing the password', async () => {
      const result = await run(['users', 'add', 'alice'], `${PASSWORD}\r${PASSWORD}\r`, { tty: true });
      expect(result.code).to.equal(0);
      expect(result.stderr).to.include('New password: ');
      expect(result.stderr).to.include('Repeat the password: ');
      expect(result.stdout + result.stderr).not.to.include(PASSWORD);
      expect(await verifyPassword(PASSWORD, (await store.get('alice'))!.passwordHash)).to.equal(true);
    });

    it('exits 1 when the two prompted passwords differ', async () => {
      const result = await run(['users', 'add', 'alice'], `${PASSWORD}\rsomething else\r`, { tty: true });
      expect(result.code).to.equal(1);
      expect(result.stderr).to.include('do not match');
      expect(await store.list()).to.deep.equal([]);
    });

    it('can be called directly with a context of streams and services', async () => {
      const stdout = capture();
      const account = await addUser({ ...services(), stdin: stdinOf(`${PASSWORD}\n`), stdout, stderr: capture() }, 'alice', ['publisher']);
      expect(account.roles).to.deep.equal(['publisher']);
      expect(stdout.text()).to.equal('Added user "alice" with roles: publisher.\n');
    });
  });

  describe('users remove, roles, passwd, list', () => {
    beforeEach(async () => {
      expect((await run(['users', 'add', 'alice', '-r', 'user'], `${PASSWORD}\n`)).code).to.equal(0);
      expect((await run(['clients', 'add', 'svc'])).code).to.equal(0);
    });

    it('removes a user, and exits 1 for an unknown name or a service client', async () => {
      expect((await run(['users', 'remove', 'svc'])).code).to.equal(1);
      expect((await run(['users', 'remove', 'nobody'])).code).to.equal(1);
      expect((await run(['users', 'remove', 'alice'])).code).to.equal(0);
      expect((await store.list()).map((account) => account.name)).to.deep.equal(['svc']);
    });

    it('replaces the roles of an account', async () => {
      const result = await run(['users', 'roles', 'alice', 'admin', 'publisher']);
      expect(result.code).to.equal(0);
      expect((await store.get('alice'))?.roles).to.deep.equal(['admin', 'publisher']);
      expect((await run(['users', 'roles', 'nobody', 'admin'])).code).to.equal(1);
    });

    it('changes the password from stdin and bumps credentialsChangedAt', async () => {
      const before = (await store.get('alice'))!;
      const result = await run(['users', 'passwd', 'alice'], 'a brand new password\n');
      expect(result.code).to.equal(0);
      const after = (await store.get('alice'))!;
      expect(await verifyPassword('a brand new password', after.passwordHash)).to.equal(true);
      expect(await verifyPassword(PASSWORD, after.passwordHash)).to.equal(false);
      expect(after.credentialsChangedAt).to.be.greaterThan(before.credentialsChangedAt);
      expect((await run(['users', 'passwd', 'svc'], 'a brand new password\n')).code).to.equal(1);
    });

    it('lists accounts as a table', async () => {
      const result = await run(['users', 'list']);
      expect(result.code).to.equal(0);
      const lines = result.stdout.trimEnd().split('\n');
      expect(lines[0]).to.match(/^NAME\s+KIND\s+ROLES\s+CREATED$/);
      expect(lines[1]).to.match(/^alice\s+user\s+user\s+\d{4}-\d\d-\d\dT/);
      expect(lines[2]).to.match(/^svc\s+service\s+publisher\s+\d{4}-/);
    });

    it('lists accounts as JSON without password hashes when --json is given', async () => {
      const result = await run(['users', 'list', '--json']);
      expect(result.code).to.equal(0);
      const rows = JSON.parse(result.stdout);
      expect(rows.map((row: { name: string }) => row.name)).to.deep.equal(['alice', 'svc']);
      expect(rows[0]).to.have.all.keys('name', 'kind', 'roles', 'createdAt', 'credentialsChangedAt');
      expect(result.stdout).not.to.include('$scrypt$');
    });
  });

  describe('clients', () => {
    it('creates a service client with role publisher and prints its secret once', async () => {
      const result = await run(['clients', 'add', 'svc']);
      expect(result.code).to.equal(0);
      const secret = result.stdout.trimEnd().split('\n').at(-1)!;
      expect(secret).to.match(/^[A-Za-z0-9_-]{43}$/);
      expect(result.stdout.split(secret)).to.have.length(2);
      expect(result.stdout).to.match(/will not be shown again/);
      const account = (await store.get('svc'))!;
      expect(account).to.include({ kind: 'service' });
      expect(account.roles).to.deep.equal(['publisher']);
      expect(await verifyPassword(secret, account.passwordHash)).to.equal(true);
      expect(await readFile(path.join(dir, 'users.json'), 'utf8')).not.to.include(secret);
    });

    it('makes the secret from 32 bytes of the injected randomness', async () => {
      const bytes = Buffer.alloc(32, 7);
      const result = await run(['clients', 'add', 'svc', '--json', '-r', 'admin'], '', {
        services: { randomBytes: () => bytes },
      });
      expect(JSON.parse(result.stdout)).to.deep.equal({
        name: 'svc',
        kind: 'service',
        roles: ['admin'],
        secret: bytes.toString('base64url'),
      });
    });

    it('rotates the secret so that only the new one verifies', async () => {
      const { secret: old } = await addClient({ ...services(), stdin: stdinOf(''), stdout: capture(), stderr: capture() }, 'svc', []);
      const result = await run(['clients', 'rotate', 'svc', '--json']);
      expect(result.code).to.equal(0);
      const { secret } = JSON.parse(result.stdout) as { secret: string };
      const hash = (await store.get('svc'))!.passwordHash;
      expect(secret).not.to.equal(old);
      expect(await verifyPassword(secret, hash)).to.equal(true);
      expect(await verifyPassword(old, hash)).to.equal(false);
    });

    it('exits 1 when rotating or removing a user or an unknown client', async () => {
      await run(['users', 'add', 'alice'], `${PASSWORD}\n`);
      expect((await run(['clients', 'rotate', 'alice'])).code).to.equal(1);
      expect((await run(['clients', 'remove', 'alice'])).code).to.equal(1);
      expect((await run(['clients', 'remove', 'nobody'])).code).to.equal(1);
      expect(await store.get('alice')).not.to.equal(undefined);
    });

    it('removes a service client', async () => {
      await run(['clients', 'add', 'svc']);
      expect((await run(['clients', 'remove', 'svc'])).code).to.equal(0);
      expect(await store.list()).to.deep.equal([]);
    });

    it('exits 1 when the name is taken', async () => {
      await run(['clients', 'add', 'svc']);
      const result = await run(['clients', 'add', 'svc']);
      expect(result.code).to.equal(1);
      expect(result.stdout).to.equal('');
    });
  });
});

describe('notify CLI (spawned)', function () {
  // Each run starts Node and tsx.
  this.timeout(30_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'notify-cli-spawn-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function notify(
    args: string[],
    input: string,
    options: {
      cwd?: string;
      env?: Record<string, string>;
      /** Hold stdin open until this settles; `opened` is called once the CLI has opened the user file. */
      gate?: { opened: () => void; release: Promise<void> };
    } = { env: { DATA_DIR: path.join(dir, 'data') } },
  ): Promise<{ code: number | null; stdout: string; stderr: string; argv: string[] }> {
    // tsx by absolute URL, so the CLI can run with any working directory.
    const argv = ['--import', TSX, path.join(ROOT, 'src/cli/main.ts'), ...args];
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, argv, {
        cwd: options.cwd ?? ROOT,
        env: { PATH: process.env.PATH ?? '', SCRYPT_LOG_N: '10', ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        if (stderr.includes('notify: user file ')) options.gate?.opened();
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr, argv: child.spawnargs }));
      if (options.gate === undefined) child.stdin.end(input);
      else void options.gate.release.then(() => child.stdin.end(input));
    });
  }

  it('adds a user from piped stdin, refuses a duplicate and bad arguments, never echoing the password', async () => {
    const added = await notify(['users', 'add', 'alice', '--role', 'admin'], `${PASSWORD}\n`);
    expect(added.code, added.stderr).to.equal(0);
    expect(added.stdout).to.include('alice');

    const duplicate = await notify(['users', 'add', 'alice'], `${PASSWORD}\n`);
    expect(duplicate.code).to.equal(1);
    expect(duplicate.stderr).to.include('already exists');

    const bad = await notify(['users', 'add', 'alice', '--password', PASSWORD], '');
    expect(bad.code).to.equal(2);

    for (const run of [added, duplicate]) {
      expect(run.argv.join(' ')).not.to.include(PASSWORD);
      expect(run.stdout + run.stderr).not.to.include(PASSWORD);
    }
    expect(bad.stdout + bad.stderr).not.to.include(PASSWORD);

    const file = path.join(dir, 'data', 'users.json');
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    const content = await readFile(file, 'utf8');
    expect(content).not.to.include(PASSWORD);
    const [account] = JSON.parse(content).accounts;
    expect(account).to.include({ name: 'alice', kind: 'user' });
    expect(account.roles).to.deep.equal(['admin']);
    expect(await verifyPassword(PASSWORD, account.passwordHash)).to.equal(true);
  });

  it('says which user file it used, and refuses to create the default ./data of another directory', async () => {
    const elsewhere = path.join(dir, 'elsewhere');
    await mkdir(elsewhere);
    const refused = await notify(['users', 'add', 'eve'], `${PASSWORD}\n`, { cwd: elsewhere });
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.include(`no data directory at ${path.join(elsewhere, 'data')}`);
    expect(refused.stderr).to.include('--data-dir');
    expect(await readdir(elsewhere)).to.deep.equal([]);

    const named = await notify(['users', 'add', 'eve', '--data-dir', 'srv'], `${PASSWORD}\n`, { cwd: elsewhere });
    expect(named.code, named.stderr).to.equal(0);
    const file = path.join(elsewhere, 'srv', 'users.json');
    expect(named.stderr).to.equal(`notify: user file ${file} (new, in a new data directory ${path.join(elsewhere, 'srv')})\n`);
    expect(JSON.parse(await readFile(file, 'utf8')).accounts.map((a: { name: string }) => a.name)).to.deep.equal(['eve']);

    // Run from the server's directory (./data exists), the default is used and named.
    await rename(path.join(elsewhere, 'srv'), path.join(elsewhere, 'data'));
    const listed = await notify(['users', 'list', '--json'], '', { cwd: elsewhere });
    expect(listed.code, listed.stderr).to.equal(0);
    expect(listed.stderr).to.equal(`notify: user file ${path.join(elsewhere, 'data', 'users.json')}\n`);
    expect(JSON.parse(listed.stdout).map((a: { name: string }) => a.name)).to.deep.equal(['eve']);
  });

  it('loses no account when 20 processes add one each at the same moment', async function () {
    this.timeout(180_000);
    const count = 20;
    const env = { DATA_DIR: path.join(dir, 'data') };
    await mkdir(env.DATA_DIR);
    // Every process gets its password (and so writes) only once all of them have the user file open.
    let opened = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const gate = { opened: () => ++opened === count && release(), release: released };
    const runs = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        notify(['users', 'add', `user${i}`], `${PASSWORD}\n`, { env, gate: { ...gate, opened: once(gate.opened) } }),
      ),
    );
    const names = JSON.parse(await readFile(path.join(env.DATA_DIR, 'users.json'), 'utf8')).accounts.map((a: { name: string }) => a.name);
    for (const [i, run] of runs.entries()) {
      // Each account is there, or its process said so and exited non-zero (a lock timeout).
      if (names.includes(`user${i}`)) {
        expect(run.code, run.stderr).to.equal(0);
      } else {
        expect(run.code, `user${i} is missing but its process exited 0`).to.equal(1);
        expect(run.stderr).to.match(/users\.json\.lock is held by .*nothing was changed/);
      }
    }
    expect(names.length).to.be.greaterThan(0);
  });
});

function once(fn: () => unknown): () => void {
  let called = false;
  return () => {
    if (!called) {
      called = true;
      fn();
    }
  };
}
