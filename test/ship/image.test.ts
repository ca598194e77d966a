import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { cleanEnv, nativePrebuildEnv, ROOT } from '../helpers/checkout.js';

/**
 * The container image and the deployment files (issue 11). No container runtime runs here, so
 * the image is rehearsed: scripts/rehearse-image.sh runs the Dockerfile's own steps
 * (scripts/image-steps.sh) in temporary directories and starts the image's command. What is
 * checked of the files themselves is what a reviewer would check by eye, so they cannot drift.
 */
describe('the container image and the deployment files', function () {
  this.timeout(600_000);

  it('builds and runs the image steps in a temporary directory: healthy, unprivileged, state in the volume, clean SIGTERM', async () => {
    const prebuilds = mkdtempSync(path.join(os.tmpdir(), 'notify-prebuilds-'));
    after(() => rmSync(prebuilds, { recursive: true, force: true }));
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('bash', [path.join(ROOT, 'scripts/rehearse-image.sh')], {
        cwd: ROOT,
        env: cleanEnv(nativePrebuildEnv(prebuilds)),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.on('data', (chunk) => (text += chunk));
      child.stderr.on('data', (chunk) => (text += chunk));
      child.on('close', (exit) => resolve({ code: exit, output: text }));
    });
    expect(code, output).to.equal(0);
    for (const line of [
      'healthy on 127.0.0.1',
      'stopped by SIGTERM (exit code 0)',
      'checkout: npm ci --omit=dev, then npm start',
      'rehearse: OK',
    ]) {
      expect(output).to.include(line);
    }
    if (process.getuid?.() === 0) expect(output).to.include('ran as nobody; its state is in the volume');
  });

  it('has a multi-stage Dockerfile: the steps of image-steps.sh, a non-root user, node dist/main.js, HEALTHCHECK on /healthz, a /data volume', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const lines = dockerfile.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    expect(lines.filter((line) => line.startsWith('FROM ')).map((line) => line.split(' AS ')[1])).to.deep.equal(['build', 'runtime']);
    const runs = lines.filter((line) => line.startsWith('RUN sh scripts/image-steps.sh')).map((line) => line.split(' ')[3]);
    expect(runs).to.deep.equal(['deps', 'build', 'runtime']);
    const runtime = lines.slice(lines.findIndex((line) => line.includes('AS runtime')));
    expect(runtime).to.include('USER node');
    expect(runtime).to.include('VOLUME ["/data"]');
    expect(runtime.some((line) => /^ENV .*DATA_DIR=\/data/.test(line))).to.equal(true);
    expect(runtime.at(-1)).to.equal('CMD ["node", "dist/main.js"]');
    expect(runtime.some((line) => line.startsWith('HEALTHCHECK') && line.includes('"scripts/image-steps.sh", "healthcheck"'))).to.equal(
      true,
    );
    expect(readFileSync(path.join(ROOT, 'scripts/image-steps.sh'), 'utf8')).to.include('path: "/healthz"');
    // What COPY . . leaves out matches what the rehearsal copies (the files git lists).
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8');
    for (const entry of ['node_modules/', 'dist/', 'data/', '.git/']) expect(ignored).to.include(entry);
  });

  it('has a compose.yaml with Redis and two instances sharing one data volume behind a load balancer with the README settings', () => {
    const compose = parse(readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8')) as {
      services: Record<
        string,
        { image?: string; environment?: Record<string, string>; volumes?: string[]; depends_on?: Record<string, unknown> }
      >;
      volumes: Record<string, unknown>;
    };
    const instances = ['notify-1', 'notify-2'].map((name) => compose.services[name]!);
    for (const instance of instances) {
      expect(instance.environment?.REDIS_URL).to.equal('redis://redis:6379');
      expect(instance.environment?.TRUST_PROXY).to.equal('true');
      expect(instance.environment?.JWT_ISSUER).to.be.a('string');
      expect(instance.volumes).to.deep.equal(['notify-data:/data']);
      expect(instance.depends_on).to.have.property('redis');
    }
    expect(compose.services.redis?.image).to.match(/^redis:7/);
    expect(Object.keys(compose.volumes)).to.include.members(['notify-data', 'redis-data']);
    const lb = compose.services.lb!;
    expect(lb.volumes).to.deep.equal(['./deploy/nginx.conf:/etc/nginx/nginx.conf:ro']);
    const nginx = readFileSync(path.join(ROOT, 'deploy/nginx.conf'), 'utf8');
    for (const setting of [
      'proxy_buffering off;',
      'gzip off;',
      'proxy_http_version 1.1;',
      'proxy_set_header Connection "";',
      'proxy_read_timeout 1h;',
      'server notify-1:3000;',
      'server notify-2:3000;',
    ]) {
      expect(nginx, setting).to.include(setting);
    }
    // The README lists the same settings.
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const setting of ['proxy_buffering off;', 'proxy_http_version 1.1; proxy_set_header Connection "";', 'proxy_read_timeout 1h;']) {
      expect(readme, setting).to.include(setting);
    }
  });

  it('has a systemd unit example that systemd-analyze accepts, with state in /var/lib/notify and no restart loop on exit code 78', () => {
    const unit = path.join(ROOT, 'docs/notify.service');
    const text = readFileSync(unit, 'utf8');
    for (const line of [
      'StateDirectory=notify',
      'Environment=DATA_DIR=/var/lib/notify',
      'RestartPreventExitStatus=78',
      'User=notify',
      'NoNewPrivileges=yes',
      'ExecStart=/usr/bin/env notify serve',
    ]) {
      expect(text, line).to.include(`\n${line}\n`);
    }
    const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((file) => existsSync(file));
    if (analyze !== undefined) {
      // verify warns about unknown keys and bad values on stderr (exit code 0), and fails on worse.
      const result = spawnSync(analyze, ['verify', unit], { encoding: 'utf8' });
      expect(result.status, result.stderr).to.equal(0);
      expect(`${result.stdout}${result.stderr}`).to.equal('');
    }
  });
});
