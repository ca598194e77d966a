/**
 * `npm run build` step: bundles the browser code (the demo page, its SharedWorker and the client
 * as an ES module) with esbuild into `dist/web/public/`, and copies the page's static files to
 * `dist/web/static/`, so the built server serves them without esbuild installed.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from '../src/web/assets.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'web');
mkdirSync(path.join(out, 'public'), { recursive: true });
for (const [name, body] of await bundle()) writeFileSync(path.join(out, 'public', name), body);
cpSync(path.join(root, 'src', 'web', 'static'), path.join(out, 'static'), { recursive: true });
