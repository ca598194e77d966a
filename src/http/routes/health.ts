import Router from '@koa/router';

export interface Readiness {
  /** `undefined` when ready, else why not (e.g. shutting down). */
  (): string | undefined;
}

/** An external issuer whose keys cannot be had right now (issue 10): its tokens get 401 until they can. */
export interface DegradedIssuer {
  readonly alias: string;
  readonly issuer: string;
  readonly reason: string;
}

/**
 * Liveness (`/healthz`: the process answers) and readiness (`/readyz`: send it traffic). A
 * degraded external issuer is listed but does not make the instance unready: local accounts and
 * the other issuers still work, and every instance shares the same provider, so taking instances
 * out of rotation would only turn a partial outage into a whole one.
 */
export function createHealthRouter(deps: { readiness: Readiness; degradedIssuers: () => readonly DegradedIssuer[] }): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const reason = deps.readiness();
    const degraded = deps.degradedIssuers();
    ctx.status = reason === undefined ? 200 : 503;
    ctx.body = {
      ...(reason === undefined ? { status: 'ready' } : { status: 'unavailable', reason }),
      ...(degraded.length > 0 ? { degradedIssuers: degraded } : {}),
    };
  });
  return router;
}
