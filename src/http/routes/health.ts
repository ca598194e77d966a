import Router from '@koa/router';

export interface Readiness {
  /** `undefined` when ready, else why not (e.g. shutting down). */
  (): string | undefined;
}

/** Liveness (`/healthz`: the process answers) and readiness (`/readyz`: send it traffic). */
export function createHealthRouter(deps: { readiness: Readiness }): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const reason = deps.readiness();
    ctx.status = reason === undefined ? 200 : 503;
    ctx.body = reason === undefined ? { status: 'ready' } : { status: 'unavailable', reason };
  });
  return router;
}
