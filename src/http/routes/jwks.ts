import Router from '@koa/router';
import type { TokenService } from '../../auth/token-service.js';

/** The public signing keys (RFC 7517), for resource servers that verify our access tokens themselves. */
export function createJwksRouter(deps: { tokens: TokenService }): Router {
  const router = new Router();
  router.get('/.well-known/jwks.json', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = deps.tokens.jwks();
  });
  return router;
}
