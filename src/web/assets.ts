import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file the web router may serve. */
export interface WebAsset {
  readonly type: string;
  readonly body: Buffer;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** Bundles the browser code (esbuild), named as the server serves them under `/app/`. */
const BUNDLES: ReadonlyArray<readonly [name: string, entry: string, format: 'esm' | 'iife']> = [
  ['demo.js', 'demo.ts', 'esm'],
  ['notify-worker.js', 'worker.ts', 'iife'],
  ['notify-client.js', '../client/index.ts', 'esm'],
];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * The demo page's files, read into memory once. `npm run build` writes the bundles to
 * `dist/web/public/`; when they are not there (running from the TypeScript sources, as the tests
 * do), they are bundled here with esbuild, once per process.
 */
let loading: Promise<Map<string, WebAsset>> | undefined;
export function loadWebAssets(): Promise<Map<string, WebAsset>> {
  loading ??= load();
  return loading;
}

async function load(): Promise<Map<string, WebAsset>> {
  const assets = new Map<string, WebAsset>();
  const add = (name: string, body: Buffer) => assets.set(name, { type: TYPES[path.extname(name)] ?? 'application/octet-stream', body });
  const staticDir = existsSync(path.join(here, 'static'))
    ? path.join(here, 'static')
    : path.resolve(here, '..', '..', 'src', 'web', 'static');
  for (const name of readdirSync(staticDir)) add(name, readFileSync(path.join(staticDir, name)));
  const prebuilt = path.join(here, 'public');
  if (existsSync(prebuilt)) {
    for (const [name] of BUNDLES) add(name, readFileSync(path.join(prebuilt, name)));
    return assets;
  }
  for (const [name, body] of await bundle()) add(name, body);
  return assets;
}

/** Builds the bundles in memory (also used by `scripts/build-web.mjs` through `writeBundles`). */
export async function bundle(): Promise<Map<string, Buffer>> {
  // esbuild is a build-time tool (it comes with tsx): imported only when no prebuilt bundle exists.
  const esbuild = await import('esbuild');
  const out = new Map<string, Buffer>();
  for (const [name, entry, format] of BUNDLES) {
    const result = await esbuild.build({
      entryPoints: [path.join(here, entry)],
      bundle: true,
      format,
      target: ['chrome110', 'firefox115', 'safari16'],
      platform: 'browser',
      minify: true,
      write: false,
      legalComments: 'none',
    });
    out.set(name, Buffer.from(result.outputFiles[0]!.contents));
  }
  return out;
}
