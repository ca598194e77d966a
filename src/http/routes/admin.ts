import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { RoleTable } from '../../auth/role-table.js';
import { permissionsOf, type Permission } from '../../auth/delegation.js';
import { hashPassword } from '../../auth/password.js';
import type { RefreshTokenStore } from '../../auth/refresh-token-store.js';
import type { RevocationList } from '../../auth/revocations.js';
import { SUBJECT_NAME, type Account, type UserStore } from '../../auth/user-store.js';
import { BearerError, InvalidRequestError, NotFoundError } from '../../errors.js';
import type { Authenticator } from '../authenticate.js';
import { createBodyParser, parseWith } from '../request-body.js';

/** 256 bits, as `notify clients add` generates: a secret nobody can guess, so its hash cannot be brute-forced. */
const CLIENT_SECRET_BYTES = 32;

const rolesField = z.array(z.string().max(64)).max(32);
const createBody = z
  .object({
    name: z.string().max(256),
    kind: z.enum(['user', 'service']),
    roles: rolesField,
    password: z.string().max(4096).optional(),
  })
  .strict();
const rolesBody = z.object({ roles: rolesField }).strict();
const revocationBody = z.object({ subject: z.string().max(256) }).strict();

export interface AdminRouterDeps {
  readonly users: UserStore;
  readonly roles: RoleTable;
  readonly authenticate: Authenticator;
  readonly revocations: RevocationList;
  readonly refreshTokens: RefreshTokenStore;
  readonly scryptLogN: number;
  readonly maxBodyBytes: number;
}

/**
 * The HTTP API the CLI's account commands imply (issue 10 §2, §3), for service clients whose role
 * has the permission: `manage_accounts` to list, create and remove accounts and set their roles;
 * `revoke_subjects` to end every stream and token of any subject (local, external or minted), on
 * every instance (the revocation list is shared through the backend). Only a service client's own
 * client-credentials token counts: not a person's sign-in, not a token minted for someone else,
 * not a token of an external issuer (whatever its subject).
 */
export function createAdminRouter(deps: AdminRouterDeps): Router {
  const router = new Router();
  const body = createBodyParser({ maxBytes: deps.maxBodyBytes, types: ['json'] });

  async function requirePermission(ctx: Context, permission: Permission): Promise<Account> {
    const { claims } = await deps.authenticate(ctx);
    const ownClientToken = claims.externalIssuer === undefined && claims.sessionId === undefined && claims.clientId === claims.subject;
    const account = ownClientToken ? await deps.users.get(claims.subject) : undefined;
    if (account?.kind !== 'service' || !permissionsOf(deps.roles, account.roles).has(permission)) {
      throw BearerError.insufficientScope(`This needs a service client whose role has the ${permission} permission.`);
    }
    ctx.set('Cache-Control', 'no-store');
    return account;
  }

  const checkRoles = (roles: readonly string[]) => {
    const unknown = roles.find((role) => !Object.hasOwn(deps.roles, role));
    if (unknown !== undefined) {
      throw new InvalidRequestError(`Role "${unknown}" is not in the role table.`, { code: 'unknown_role', field: 'roles' });
    }
  };

  router.get('/admin/accounts', async (ctx) => {
    await requirePermission(ctx, 'manage_accounts');
    ctx.body = { accounts: (await deps.users.list()).map(view) };
  });

  router.post('/admin/accounts', body, async (ctx) => {
    await requirePermission(ctx, 'manage_accounts');
    const input = parseWith(createBody, ctx.request.body);
    checkRoles(input.roles);
    let secret: string | undefined;
    if (input.kind === 'user') {
      if (input.password === undefined) throw new InvalidRequestError('password: required for a user.', { field: 'password' });
    } else {
      if (input.password !== undefined) {
        throw new InvalidRequestError('password: a service client gets a generated secret; do not send one.', { field: 'password' });
      }
      secret = randomBytes(CLIENT_SECRET_BYTES).toString('base64url');
    }
    // The store checks the name (`invalid_account_name`) and refuses a taken one (`account_exists`).
    const passwordHash = await hashPassword(secret ?? input.password!, { logN: deps.scryptLogN });
    const account = await deps.users.add({ name: input.name, kind: input.kind, roles: input.roles, passwordHash });
    ctx.status = 201;
    ctx.body = secret === undefined ? { account: view(account) } : { account: view(account), secret };
  });

  router.delete('/admin/accounts/:name', async (ctx) => {
    await requirePermission(ctx, 'manage_accounts');
    // Removing an account revokes its tokens and closes its streams (the store's watch, `server.ts`).
    if (!(await deps.users.remove(ctx.params.name ?? ''))) throw new NotFoundError('No such account.', 'account_not_found');
    ctx.status = 204;
  });

  router.put('/admin/accounts/:name/roles', body, async (ctx) => {
    await requirePermission(ctx, 'manage_accounts');
    const input = parseWith(rolesBody, ctx.request.body);
    checkRoles(input.roles);
    ctx.body = { account: view(await deps.users.setRoles(ctx.params.name ?? '', input.roles)) };
  });

  router.post('/admin/revocations', body, async (ctx) => {
    await requirePermission(ctx, 'revoke_subjects');
    const { subject } = parseWith(revocationBody, ctx.request.body);
    if (!SUBJECT_NAME.test(subject)) {
      throw new InvalidRequestError('subject: an account name or a namespaced subject (`kc~alice`).', {
        code: 'invalid_subject',
        field: 'subject',
      });
    }
    // Refresh tokens first, so a refresh racing this cannot mint a token after the revocation.
    await deps.refreshTokens.revokeSubject(subject);
    deps.revocations.revokeSubject(subject, 'revoked_by_client');
    ctx.body = { subject, revokedAt: new Date().toISOString() };
  });

  return router;
}

/** An account as the API shows it: never the hash. */
function view(account: Account) {
  return {
    name: account.name,
    kind: account.kind,
    roles: account.roles,
    createdAt: new Date(account.createdAt).toISOString(),
    credentialsChangedAt: new Date(account.credentialsChangedAt).toISOString(),
  };
}
