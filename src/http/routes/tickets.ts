import Router from '@koa/router';
import { z } from 'zod';
import type { RevocationList } from '../../auth/revocations.js';
import type { TicketStore } from '../../auth/ticket-store.js';
import type { TokenService } from '../../auth/token-service.js';
import { OAuthError } from '../../errors.js';
import { assertSameOrigin } from '../authenticate.js';
import type { CookiePolicy } from '../cookies.js';
import { createBodyParser, parseWith } from '../request-body.js';
import { ticketId } from '../token-exchange.js';

const ticketBody = z.object({ ticket: z.string().min(1).max(256) });

/**
 * `POST /auth/ticket` (issue 10 §2): the browser redeems a one-time ticket its application's
 * backend got by token exchange, and gets the access token as the HttpOnly cookie on notify's own
 * origin; the answer's body holds no token, so no script on the page ever sees one. The ticket is
 * taken from the store before anything else, so a replay, here or on another instance, finds
 * nothing (`invalid_grant`), as does an expired ticket or one whose subject was revoked after it
 * was issued. The request must come from our origin or an allowed one (`CORS_ORIGINS`), so a
 * foreign page cannot sign a visitor in as someone else (login CSRF).
 */
export function createTicketRouter(deps: {
  readonly tickets: TicketStore;
  readonly tokens: TokenService;
  readonly revocations: RevocationList;
  readonly cookies: CookiePolicy;
  readonly allowedOrigins: readonly string[];
  readonly maxBodyBytes: number;
}): Router {
  const router = new Router();
  const allowed = new Set(deps.allowedOrigins);
  const body = createBodyParser({ maxBytes: deps.maxBodyBytes, types: ['json', 'form'] });
  router.post('/auth/ticket', body, async (ctx) => {
    assertSameOrigin(ctx, allowed);
    let input;
    try {
      input = parseWith(ticketBody, ctx.request.body);
    } catch (error) {
      throw new OAuthError('invalid_request', (error as Error).message, { cause: error });
    }
    const grant = await deps.tickets.take(ticketId(input.ticket));
    if (grant === undefined || deps.revocations.isRevoked({ subject: grant.subject, sessionId: undefined, issuedAt: grant.issuedAt })) {
      throw new OAuthError('invalid_grant', 'The ticket is invalid, expired or already used.');
    }
    const access = await deps.tokens.issueAccessToken({
      subject: grant.subject,
      clientId: grant.clientId,
      grants: grant.grants,
      notBefore: deps.revocations.notBefore(grant.subject),
    });
    deps.cookies.setAccessToken(ctx, access.token, access.expiresIn * 1000);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { subject: grant.subject, expires_in: access.expiresIn };
  });
  return router;
}
