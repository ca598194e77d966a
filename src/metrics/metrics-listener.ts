import { createServer, type Server } from 'node:http';
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
      res.end('{"error":"not_found","error_description":"Not found."}');
      return;
    }
    metrics.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
      () => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":"internal_error","error_description":"Internal server error."}');
      },
    );
  });
}
