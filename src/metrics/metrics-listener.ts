import { createServer, type Server } from 'node:http';
import { errorBody } from '../errors.js';
import type { ServerMetrics } from './server-metrics.js';

/**
 * A plain HTTP server for `METRICS=listen`: `GET /metrics` and nothing else, without
 * authentication. Bind it to loopback or a private interface that only the scraper reaches.
 */
export function createMetricsListener(metrics: ServerMetrics): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(errorBody('not_found', 'Not found.')));
      return;
    }
    metrics.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
      () => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(errorBody('internal_error', 'Internal server error.')));
      },
    );
  });
}
