import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';
import type { RoleTable } from '../auth/role-table.js';
import { delegatedGrants, delegationFor, mayDelegate, scopeOf } from '../auth/delegation.js';
import type { ExternalTokenVerifier } from '../auth/external-token-verifier.js';
import type { RevocationList } from '../auth/revocations.js';
import type { TicketStore } from '../auth/ticket-store.js';
import type { TokenService } from '../auth/token-service.js';
import { NAMESPACE_SEPARATOR, SUBJECT_NAME, type Account } from '../auth/user-store.js';
import { BearerError, OAuthError } from '../errors.js';

/** RFC 8693 §2.1. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 token type identifiers, and two of ours. */
const TOKEN_TYPES = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  /** `subject_token` is a name the client chooses; the subject becomes `<client>~<name>`. */
  subjectName: 'urn:notify:params:oauth:token-type:subject-name',
  /** The answer is a one-time browser ticket for `POST /auth/ticket`, not a token. */
  ticket: 'urn:notify:params:oauth:token-type:ticket',
} as const;

/** How long a browser ticket can be redeemed: long enough for a page load, too short to be worth stealing. */
const DEFAULT_TICKET_TTL_MS = 60_000;
/** The name part of a requested subject: topic-safe, without the namespace separator. */
const SUBJECT_PART = /^[A-Za-z0-9._-]{1,64}$/;

const exchangeBody = z.object({
  grant_type: z.literal(TOKEN_EXCHANGE_GRANT),
  subject_token: z
    .string()
    .min(1)
    .max(16 * 1024),
  subject_token_type: z.enum([TOKEN_TYPES.jwt, TOKEN_TYPES.accessToken, TOKEN_TYPES.subjectName]),
  requested_token_type: z.enum([TOKEN_TYPES.accessToken, TOKEN_TYPES.jwt, TOKEN_TYPES.ticket]).optional(),
  scope: z.string().max(8192).optional(),
  audience: z.string().max(1024).optional(),
  resource: z.string().max(1024).optional(),
  actor_token: z.string().optional(),
});

export interface TokenExchangeDeps {
  readonly tokens: TokenService;
  readonly external: ExternalTokenVerifier;
  readonly revocations: RevocationList;
  readonly roles: RoleTable;
  readonly tickets: TicketStore;
  /** Our `aud`: an `audience` or `resource` naming anything else is `invalid_target`. */
  readonly audience: string;
  /** Our `iss`, also accepted as `resource`. */
  readonly issuer: string;
  readonly ticketTtlMs?: number;
  readonly clock?: () => number;
}

/** Answers a token-exchange request of an authenticated service client. */
export type TokenExchange = (ctx: Context, body: unknown, client: Account) => Promise<void>;

/** The ticket as stored: its SHA-256, so the store holds nothing a thief could redeem. */
export function ticketId(ticket: string): string {
  return createHash('sha256').update(ticket).digest('base64url');
}

/**
 * OAuth 2.0 Token Exchange (RFC 8693) at the token endpoint (issue 10 §2): a service client whose
 * role may `delegate` gets a short-lived notify access token for one of its own users, with the
 * grants it asks for in `scope` as far as its delegation covers them. The subject is a name the
 * client chooses (namespaced under the client, `<client>~<name>`), or the subject of a
 * `subject_token` from a trusted issuer (a JWT the backend signs with its own configured key, or
 * a user's token from the identity provider). With `requested_token_type` = the ticket type, the
 * answer is a one-time ticket the browser redeems at `POST /auth/ticket` instead of a token.
 *
 * No refresh token: the backend holds the user's session and exchanges again when the token is
 * near its end; a refresh token would be a second, longer credential to steal from the browser.
 */
export function createTokenExchange(deps: TokenExchangeDeps): TokenExchange {
  const ticketTtlMs = deps.ticketTtlMs ?? DEFAULT_TICKET_TTL_MS;
  const clock = deps.clock ?? Date.now;
  return async (ctx, raw, client) => {
    const parsed = exchangeBody.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new OAuthError('invalid_request', `${issue.path.join('.') || 'body'}: ${issue.message}.`);
    }
    const input = parsed.data;
    if (!mayDelegate(deps.roles, client.roles))
      throw new OAuthError('unauthorized_client', 'This client may not mint tokens for other subjects.');
    if (input.actor_token !== undefined)
      throw new OAuthError('invalid_request', 'actor_token is not supported; the client itself is the actor.');
    for (const target of [input.audience, input.resource]) {
      if (target !== undefined && target !== deps.audience && target !== deps.issuer) {
        throw new OAuthError('invalid_target', 'This server issues tokens only for itself.');
      }
    }

    let subject: string;
    if (input.subject_token_type === TOKEN_TYPES.subjectName) {
      subject = `${client.name}${NAMESPACE_SEPARATOR}${input.subject_token}`;
      if (!SUBJECT_PART.test(input.subject_token) || !SUBJECT_NAME.test(subject)) {
        throw new OAuthError(
          'invalid_request',
          'subject_token: a subject name is 1 to 64 characters of A-Z a-z 0-9 . _ - and, with the client name and ~, at most 64.',
        );
      }
    } else {
      if (!deps.external.accepts(input.subject_token, 'subject_token')) {
        throw new OAuthError('invalid_grant', 'The subject_token is not from a trusted issuer.');
      }
      try {
        const claims = await deps.external.verify(input.subject_token, 'subject_token');
        if (deps.revocations.isRevoked(claims)) throw BearerError.invalid('revoked');
        subject = claims.subject;
      } catch (error) {
        throw new OAuthError('invalid_grant', 'The subject_token is invalid or has expired.', { cause: error });
      }
    }

    const grants = delegatedGrants(delegationFor(deps.roles, client.roles, subject)!, input.scope, subject);

    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    if (input.requested_token_type === TOKEN_TYPES.ticket) {
      const ticket = randomBytes(32).toString('base64url');
      await deps.tickets.put(
        ticketId(ticket),
        { subject, clientId: client.name, grants, issuedAt: Math.floor(clock() / 1000) },
        ticketTtlMs,
      );
      ctx.body = {
        access_token: ticket,
        issued_token_type: TOKEN_TYPES.ticket,
        token_type: 'N_A',
        expires_in: Math.floor(ticketTtlMs / 1000),
      };
      return;
    }
    const access = await deps.tokens.issueAccessToken({
      subject,
      clientId: client.name,
      grants,
      notBefore: deps.revocations.notBefore(subject),
    });
    ctx.body = {
      access_token: access.token,
      issued_token_type: TOKEN_TYPES.accessToken,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      scope: scopeOf(grants),
    };
  };
}
