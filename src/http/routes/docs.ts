import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import Router from '@koa/router';
import type { Context } from 'koa';
import { errorBody } from '../../errors.js';

/**
 * Policy for every docs answer. Swagger UI needs only its own script and stylesheet from us, the
 * spec fetched from us (`connect-src 'self'`), and inline `style` attributes that React sets
 * (`'unsafe-inline'` for styles only; scripts stay `'self'`, which is why the page has no inline
 * script and the initialiser is a file). Nothing is loaded from another host.
 */
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSET_CACHE_CONTROL = 'public, max-age=86400';

/**
 * Our initialiser, replacing swagger-ui-dist's `swagger-initializer.js` (which points at the
 * petstore). `validatorUrl: null` turns off the badge that would send the spec to
 * validator.swagger.io.
 */
const INIT_JS = `'use strict';
window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.yaml',
    dom_id: '#swagger-ui',
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
`;

const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>notify API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" sizes="32x32" href="/docs/assets/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="/docs/assets/favicon-16x16.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
`;

/** The only files of swagger-ui-dist we serve, with their content types. */
const DIST_FILES: ReadonlyArray<readonly [name: string, type: string]> = [
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
  ['favicon-32x32.png', 'image/png'],
  ['favicon-16x16.png', 'image/png'],
];

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

function setDocsHeaders(ctx: Context): void {
  ctx.set('Content-Security-Policy', DOCS_CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
}

/** Options of {@link createDocsRouter}. */
export interface DocsRouterOptions {
  /** Path of the OpenAPI document (`openapi.yaml`); read once, when the router is built. */
  readonly specFile: string;
}

/**
 * Serves the API description and an offline Swagger UI page:
 * `GET /openapi.yaml`, `GET /docs` (also as `/docs/`), `GET /docs/assets/<file>`.
 *
 * Assets are an explicit allowlist read into memory at construction, so a request can only ever
 * name one of those files: there is no file-system lookup from the URL, hence no path traversal.
 * Every answer carries {@link DOCS_CSP} and `X-Content-Type-Options: nosniff`.
 *
 * @throws when the spec file or a swagger-ui-dist file cannot be read (fail at start, not per request).
 */
export function createDocsRouter(options: DocsRouterOptions): Router {
  if (typeof options?.specFile !== 'string' || options.specFile.length === 0) {
    throw new TypeError('createDocsRouter: options.specFile is required');
  }
  const spec = readFileSync(options.specFile);
  const distDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

  const assets = new Map<string, Asset>();
  for (const [name, type] of DIST_FILES) {
    assets.set(name, { type, body: readFileSync(path.join(distDir, name)) });
  }
  assets.set('init.js', { type: 'text/javascript; charset=utf-8', body: Buffer.from(INIT_JS, 'utf8') });

  const router = new Router();

  router.get('/openapi.yaml', (ctx) => {
    setDocsHeaders(ctx);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'application/yaml; charset=utf-8';
    ctx.body = spec;
  });

  // The router is not strict, so this also answers `/docs/` (the page uses absolute asset URLs).
  router.get('/docs', (ctx) => {
    setDocsHeaders(ctx);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = PAGE_HTML;
  });

  router.get('/docs/assets/:file', (ctx) => {
    setDocsHeaders(ctx);
    const asset = assets.get(String(ctx.params.file));
    if (asset === undefined) {
      ctx.status = 404;
      ctx.body = errorBody('not_found', 'Not found.');
      return;
    }
    ctx.set('Cache-Control', ASSET_CACHE_CONTROL);
    ctx.type = asset.type;
    ctx.body = asset.body;
  });

  return router;
}
