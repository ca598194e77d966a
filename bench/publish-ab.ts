/**
 * Authenticated publishes per server CPU-second, notify against the minimal Koa + jose route
 * (`servers/koa-post.mjs`), each in a fresh process pinned to CPU 0, alternating, RUNS times (3):
 *   npm run build && node --import tsx bench/publish-ab.ts
 * The full bench measures the same inside its long run; this isolates it (issue 12).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from './proc.js';
import { signToken } from './tokens.js';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const N = 3000;
async function waitHttp(port: number, p: string) {
  for (let i = 0; i < 300; i++) {
    if (
      await fetch(`http://127.0.0.1:${port}${p}`).then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no server');
}
async function measure(port: number, pid: number, token: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const post = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: '/events',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const run = async (n: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < n) {
          next++;
          const s = await post(JSON.stringify({ topics: ['public/bench'], data: { t: 1, p: 'x'.repeat(150) } }));
          if (s >= 300) throw new Error(`status ${s}`);
        }
      }),
    );
  };
  await run(1000);
  const c0 = cpuSeconds([pid]);
  await run(N);
  return N / (cpuSeconds([pid]) - c0);
}
const results: Array<{ notify: number; koa: number }> = [];
for (let r = 0; r < Number(process.env.RUNS ?? 3); r++) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pab-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const notify = spawn('taskset', ['-c', '0', process.execPath, path.join(ROOT, 'dist/main.js')], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: path.join(dir, 'data') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  notify.stdout.resume();
  await waitHttp(port, '/healthz');
  const signing = {
    keyFile: path.join(dir, 'data', 'signing-key-ed25519.pem'),
    issuer: `http://127.0.0.1:${port}`,
    audience: 'notify',
    ttl: 300,
  };
  const token = await signToken(signing, 'bench-publisher');
  const n = await measure(port, notify.pid!, token);
  notify.kill('SIGTERM');
  await new Promise((x) => notify.once('exit', x));
  const kport = port + 1;
  const koa = spawn(
    'taskset',
    ['-c', '0', process.execPath, path.join(ROOT, 'bench/servers/koa-post.mjs'), String(kport), signing.keyFile, signing.issuer],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  koa.stdout.resume();
  await new Promise((x) => setTimeout(x, 1000));
  const k = await measure(kport, koa.pid!, token);
  koa.kill('SIGTERM');
  await new Promise((x) => koa.once('exit', x));
  rmSync(dir, { recursive: true, force: true });
  results.push({ notify: Math.round(n), koa: Math.round(k) });
  console.log(
    JSON.stringify({ run: r + 1, notify: Math.round(n), koa: Math.round(k), ratio: (n / k).toFixed(2), load: os.loadavg()[0]!.toFixed(2) }),
  );
}
const ratios = results.map((x) => x.notify / x.koa).sort((a, b) => a - b);
console.log(`median notify / Koa + jose: ${ratios[Math.floor(ratios.length / 2)]!.toFixed(2)}x`);
