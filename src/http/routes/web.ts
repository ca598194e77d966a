import Router from '@koa/router';
import type { Context } from 'koa';
import { errorBody } from '../../errors.js';
import type { WebAsset } from '../../web/assets.js';

/**
 * Policy for the demo page: scripts, styles, images, the SharedWorker and fetch/EventSource only
 * from this server; no inline script or style, no eval, nothing from another host (so the page
 * works offline, and injected markup cannot run).
 */
const WEB_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "worker-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface WebRouterOptions {
  /** The page's files by name (`src/web/assets.ts`); loaded on first use. */
  readonly assets: () => Promise<ReadonlyMap<string, WebAsset>>;
}

function setWebHeaders(ctx: Context): void {
  ctx.set('Content-Security-Policy', WEB_CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
}

/**
 * The demo page: `GET /` and its files at `GET /app/<file>`. Files are an explicit in-memory map,
 * so a URL can only ever name one of them (no file-system lookup, no traversal).
 */
export function createWebRouter(options: WebRouterOptions): Router {
  if (typeof options?.assets !== 'function') throw new TypeError('createWebRouter: options.assets is required');
  const router = new Router({ strict: true });

  router.get('/', async (ctx) => {
    const page = (await options.assets()).get('index.html');
    setWebHeaders(ctx);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = page?.body ?? '';
  });

  router.get('/app/:file', async (ctx) => {
    setWebHeaders(ctx);
    const name = String(ctx.params.file);
    const asset = name === 'index.html' ? undefined : (await options.assets()).get(name);
    if (asset === undefined) {
      ctx.status = 404;
      ctx.body = errorBody('not_found', 'Not found.');
      return;
    }
    // Not immutable: the names carry no content hash, so a new release must be picked up.
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = asset.type;
    ctx.body = asset.body;
  });

  return router;
}
