import { timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import { BearerError, ForbiddenError } from '../../errors.js';
import type { ServerMetrics } from '../../metrics/server-metrics.js';

type MetricsAccess = 'off' | 'token' | 'listen';

export interface MetricsRouterOptions {
  readonly metrics: ServerMetrics;
  /**
   * `off`: not served. `token`: served here to `Authorization: Bearer <token>`. `listen`: served
   * only on a separate address (see `createMetricsListener`), so here it is refused.
   */
  readonly access: MetricsAccess;
  readonly token?: string;
}

/**
 * `GET /metrics` in Prometheus text format. Refused (403 `metrics_disabled`) unless `access` is
 * `token`; then a wrong or missing token is a 401 with a Bearer challenge. The token is compared
 * in constant time.
 */
export function createMetricsRouter(options: MetricsRouterOptions): Router {
  if (options.access === 'token' && (options.token === undefined || options.token.length < 32)) {
    throw new TypeError('createMetricsRouter: access "token" needs a token of at least 32 characters');
  }
  const expected = Buffer.from(options.token ?? '', 'utf8');
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    if (options.access !== 'token') {
      throw new ForbiddenError(
        'metrics_disabled',
        options.access === 'listen' ? 'Metrics are served on a separate address.' : 'Metrics are turned off (METRICS).',
      );
    }
    const match = /^Bearer +(\S+) *$/i.exec(ctx.get('authorization'));
    if (match === null) throw BearerError.missing();
    const given = Buffer.from(match[1]!, 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw BearerError.invalid('metrics_token');
    ctx.set('Cache-Control', 'no-store');
    ctx.type = options.metrics.contentType;
    ctx.body = await options.metrics.metrics();
  });
  return router;
}
