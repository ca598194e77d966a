import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { cleanEnv, copyCheckout, nativePrebuildEnv, ROOT, run, startProcess } from '../helpers/checkout.js';
import { waitUntil } from '../helpers/streams.js';

/**
 * The package as a user gets it (issue 11): `npm pack` on a fresh checkout builds dist/ itself
 * (prepare), and the tarball installs into an empty folder, where `npx notify serve` runs the
 * server and `notify-server/client` imports, with types. Dependencies come from the npm cache
 * (or the registry), the package itself from the tarball.
 */
describe('the npm package, packed from a fresh checkout and installed into an empty folder', function () {
  this.timeout(300_000);
  let dir: string;
  let checkout: string;
  let app: string;
  let tarball: string;

  before(function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'notify-package-'));
    checkout = path.join(dir, 'checkout');
    app = path.join(dir, 'app');
    copyCheckout(checkout);
    // The dev dependencies of a fresh `npm install`, without installing them again.
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(checkout, 'node_modules'));
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: checkout })) as Array<{ filename: string }>;
    tarball = path.join(dir, packed[0]!.filename);
    mkdirSync(app);
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
      cwd: app,
      env: cleanEnv(nativePrebuildEnv(path.join(dir, 'prebuilds'))),
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('holds the built server, client types, browser bundles and openapi.yaml, and no sources or tests', () => {
    const files = run('tar', ['-tzf', tarball], { cwd: dir })
      .trim()
      .split('\n')
      .map((file) => file.replace(/^package\//, ''));
    for (const file of [
      'dist/main.js',
      'dist/cli/main.js',
      'dist/client/index.js',
      'dist/client/index.d.ts',
      'dist/web/public/notify-client.js',
      'dist/web/static/index.html',
      'openapi.yaml',
      'package.json',
      'README.md',
    ]) {
      expect(files, file).to.include(file);
    }
    expect(
      files.filter((file) => /^(src|test|scripts|bench)\//.test(file) || file.endsWith('.map') || file.endsWith('.build-inputs')),
    ).to.deep.equal([]);
  });

  it('runs the server with `npx notify serve`: health, docs, the demo page and its client bundle', async () => {
    const server = startProcess('npx', ['--no-install', 'notify', 'serve'], {
      cwd: app,
      env: cleanEnv({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: path.join(app, 'data') }),
    });
    try {
      const port = await server.listening();
      const base = `http://127.0.0.1:${port}`;
      const health = await fetch(`${base}/healthz`);
      expect(health.status).to.equal(200);
      expect(await health.json()).to.deep.equal({ status: 'ok' });
      for (const route of ['/docs', '/openapi.yaml', '/', '/app/notify-client.js']) {
        expect((await fetch(`${base}${route}`)).status, route).to.equal(200);
      }
      // SIGTERM to the group: npx does not pass signals on, the server behind it shuts down cleanly.
      server.stop('SIGTERM');
      await server.exited;
      await waitUntil(() => server.output().includes('"msg":"shutting down"'), 10_000, 'the shutdown');
      expect(server.output()).not.to.match(/"level":[56]0/);
    } finally {
      server.stop('SIGKILL');
    }
  });

  it('imports notify-server/client in Node, and a consumer type-checks against its declarations', () => {
    const names = run(
      'node',
      ['--input-type=module', '-e', "const m = await import('notify-server/client'); console.log(Object.keys(m).sort().join(' '))"],
      { cwd: app },
    );
    expect(names.trim().split(' ')).to.include.members(['NotifyClient', 'createBrowserClient', 'StreamStoppedError', 'compareEventIds']);
    writeFileSync(
      path.join(app, 'consumer.ts'),
      [
        "import { EventSource } from 'eventsource';",
        "import { NotifyClient, StreamStoppedError, type EventSourceConstructor, type NotifyEvent } from 'notify-server/client';",
        "const client = new NotifyClient({ baseUrl: 'http://127.0.0.1:3000', EventSource: EventSource as unknown as EventSourceConstructor, accessToken: 't' });",
        'const line = (event: NotifyEvent): string => `${event.id} ${event.type}`;',
        "client.subscribe(['public/**'], { event: (event) => void line(event), stop: (error) => void (error instanceof StreamStoppedError) }).close();",
        '// @ts-expect-error baseUrl is a string: the declarations are real types, not `any`',
        'new NotifyClient({ baseUrl: 42 });',
        '',
      ].join('\n'),
    );
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: [],
        },
        files: ['consumer.ts'],
      }),
    );
    run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app });
  });

  it('rebuilds dist/ only when a build input changed', () => {
    // Without TypeScript (a production install) the build script can only report what it would do.
    renameSync(path.join(checkout, 'node_modules'), path.join(dir, 'node_modules-link'));
    try {
      const build = (...flags: string[]) => {
        try {
          return { code: 0, output: run(process.execPath, ['scripts/build.mjs', ...flags], { cwd: checkout }) };
        } catch (error) {
          return { code: 1, output: (error as Error).message };
        }
      };
      expect(build('--if-stale')).to.deep.equal({ code: 0, output: '' }); // current: nothing to do, nothing printed
      appendFileSync(path.join(checkout, 'src', 'logger.ts'), '\n// changed\n');
      const stale = build('--if-stale');
      expect(stale.code).to.equal(1);
      expect(stale.output).to.include('dist/ was built from other sources than these');
      expect(build('--if-stale', '--optional').code).to.equal(0); // prepare, in `npm ci --omit=dev`, never fails the install
    } finally {
      renameSync(path.join(dir, 'node_modules-link'), path.join(checkout, 'node_modules'));
    }
    expect(readFileSync(path.join(checkout, 'dist', '.build-inputs'), 'utf8')).to.match(/^[0-9a-f]{64}\n$/);
  });
});
