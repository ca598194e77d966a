#!/usr/bin/env node
/**
 * Builds `dist/` once: the server and CLI (tsc), the client's declarations (tsc) and the browser
 * bundles (esbuild, `build-web.ts`), then records a hash of every input in `dist/.build-inputs`.
 *
 *   node scripts/build.mjs                       build now (`npm run build`)
 *   node scripts/build.mjs --if-stale            build only when an input changed (`prestart`, `precli`)
 *   node scripts/build.mjs --if-stale --optional the same, but skip quietly without TypeScript (`prepare`,
 *                                                which also runs in `npm ci --omit=dev`)
 *
 * Plain JavaScript with no dependency, so it runs in a production install (no tsx, no TypeScript).
 * The inputs are hashed rather than compared by mtime: a checkout, a copy with preserved times or
 * a `git stash` cannot make an old build look current. Hashing the ~200 input files takes a few
 * milliseconds, so `npm start` and `npm run cli` cost almost nothing when the build is current.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const stampFile = path.join(dist, '.build-inputs');
/** Files outside `src/` that change what the build produces. */
const CONFIG_INPUTS = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'tsconfig.client.json',
  'scripts/build.mjs',
  'scripts/build-web.ts',
];

/** A hash of every build input: each file's path and content, in a fixed order. */
export function inputsHash() {
  const hash = createHash('sha256');
  const files = [
    ...listFiles(path.join(root, 'src')),
    ...CONFIG_INPUTS.map((file) => path.join(root, file)).filter((file) => existsSync(file)),
  ];
  for (const file of files) {
    hash.update(path.relative(root, file).split(path.sep).join('/'));
    hash.update('\0');
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

function listFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

function recordedHash() {
  try {
    return readFileSync(stampFile, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The TypeScript compiler, or undefined in a production install (`npm ci --omit=dev`). */
function typescriptCompiler() {
  try {
    return createRequire(path.join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

function run(args) {
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`build: \`node ${args.join(' ')}\` failed\n`);
    process.exit(result.status ?? 1);
  }
}

function build(tsc, hash) {
  const started = Date.now();
  // A clean build: files of deleted sources must not linger in dist/ (or in a packed tarball).
  rmSync(dist, { recursive: true, force: true });
  run([tsc, '-p', 'tsconfig.build.json']);
  run([tsc, '-p', 'tsconfig.client.json']);
  run(['--import', 'tsx', 'scripts/build-web.ts']);
  writeFileSync(stampFile, `${hash}\n`);
  process.stderr.write(`build: dist/ built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

function main(argv) {
  const ifStale = argv.includes('--if-stale');
  const optional = argv.includes('--optional');
  const built = existsSync(path.join(dist, 'main.js'));
  // An installed package (or a container image) ships dist/ without its sources: dist/ is the program.
  if (!existsSync(path.join(root, 'src'))) {
    if (built || optional) return;
    process.stderr.write('build: neither src/ nor dist/ is here: nothing to run\n');
    process.exit(1);
  }
  const hash = inputsHash();
  if (ifStale && built && recordedHash() === hash) return;
  const tsc = typescriptCompiler();
  if (tsc === undefined) {
    if (optional) {
      process.stderr.write('build: TypeScript is not installed (a production install); dist/ is not rebuilt\n');
      return;
    }
    process.stderr.write(
      built
        ? 'build: dist/ was built from other sources than these, and TypeScript is not installed to rebuild it.\n'
        : 'build: dist/ is missing, and TypeScript is not installed to build it.\n',
    );
    process.stderr.write(
      'build: install with dev dependencies and build (`npm ci && npm run build`), then `npm ci --omit=dev` if you like.\n',
    );
    process.exit(1);
  }
  build(tsc, hash);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
