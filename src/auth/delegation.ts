import { OAuthError } from '../errors.js';
import { coveredByAny, parseSelector, type Selector } from '../topics/selector.js';
import type { Permission, RoleTable } from './role-table.js';
import type { TopicGrants } from './token-service.js';

/**
 * What a service client may do for others, declared in the role table (issue 10 §2, §3). Both are
 * explicit: a role without them (the default `publisher`, even `admin`) can neither mint tokens
 * for other subjects nor manage accounts.
 *
 * ```json
 * "app-backend": {
 *   "publish": ["users/*\/**"],
 *   "delegate": { "subscribe": ["users/{sub}/**", "public/**"] },
 *   "permissions": ["revoke_subjects"]
 * }
 * ```
 *
 * - `delegate`: the selectors a client with this role may put into tokens it mints by token
 *   exchange (`POST /auth/token`); `{sub}` is the subject the token is for, so `users/{sub}/**`
 *   lets a backend hand each user their own inbox and nobody else's. What a client asks for is
 *   bounded by the union of its roles' `delegate` (each requested selector must be covered by
 *   one); its own publish and subscribe grants are not consulted (a backend that publishes to
 *   inboxes need not read them).
 * - `permissions`: `manage_accounts` (the `/admin/accounts` API) and `revoke_subjects`
 *   (`POST /admin/revocations`).
 */
export type { Permission };

/** The permissions an account's roles give it. */
export function permissionsOf(roles: RoleTable, accountRoles: readonly string[]): Set<Permission> {
  const granted = new Set<Permission>();
  for (const role of accountRoles) {
    const entry = Object.hasOwn(roles, role) ? roles[role] : undefined;
    for (const permission of entry?.permissions ?? []) granted.add(permission);
  }
  return granted;
}

/** Does any of the account's roles delegate at all? Checked before a subject token is even looked at. */
export function mayDelegate(roles: RoleTable, accountRoles: readonly string[]): boolean {
  return accountRoles.some((role) => Object.hasOwn(roles, role) && roles[role]?.delegate !== undefined);
}

/** What a client may delegate to `subject`, `{sub}` expanded; `undefined` when none of its roles delegates. */
export function delegationFor(
  roles: RoleTable,
  accountRoles: readonly string[],
  subject: string,
): { readonly publish: Selector[]; readonly subscribe: Selector[] } | undefined {
  let found = false;
  const publish = new Set<string>();
  const subscribe = new Set<string>();
  for (const role of accountRoles) {
    const delegate = Object.hasOwn(roles, role) ? roles[role]?.delegate : undefined;
    if (delegate === undefined) continue;
    found = true;
    for (const selector of delegate.publish) publish.add(selector.replaceAll('{sub}', subject));
    for (const selector of delegate.subscribe) subscribe.add(selector.replaceAll('{sub}', subject));
  }
  if (!found) return undefined;
  return { publish: [...publish].map((source) => parseSelector(source)), subscribe: [...subscribe].map((source) => parseSelector(source)) };
}

/** At most this many `publish:`/`subscribe:` items in one `scope`: the token carries them all. */
const MAX_SCOPE_ITEMS = 64;

/**
 * The grants of a minted token. `scope` (RFC 8693 §2.1, RFC 6749 §3.3) is a space-separated list
 * of `subscribe:<selector>` and `publish:<selector>`, `{sub}` standing for the subject; without
 * it the token gets everything the client may delegate.
 * @throws OAuthError (`invalid_scope`) for a malformed item or one the delegation does not cover.
 */
export function delegatedGrants(
  delegation: { readonly publish: readonly Selector[]; readonly subscribe: readonly Selector[] },
  scope: string | undefined,
  subject: string,
): TopicGrants {
  if (scope === undefined || scope.trim() === '') {
    return { publish: delegation.publish.map((s) => s.source), subscribe: delegation.subscribe.map((s) => s.source) };
  }
  const items = scope.split(' ').filter((item) => item !== '');
  if (items.length > MAX_SCOPE_ITEMS) throw new OAuthError('invalid_scope', `At most ${MAX_SCOPE_ITEMS} scope items.`);
  const publish = new Set<string>();
  const subscribe = new Set<string>();
  for (const item of items) {
    const colon = item.indexOf(':');
    const kind = item.slice(0, colon);
    if (colon < 0 || (kind !== 'publish' && kind !== 'subscribe')) {
      throw new OAuthError('invalid_scope', 'Each scope item is subscribe:<selector> or publish:<selector>.');
    }
    let selector: Selector;
    try {
      selector = parseSelector(item.slice(colon + 1).replaceAll('{sub}', subject));
    } catch (error) {
      throw new OAuthError('invalid_scope', `Invalid selector in scope: ${(error as Error).message}`, { cause: error });
    }
    if (!coveredByAny(kind === 'publish' ? delegation.publish : delegation.subscribe, selector)) {
      throw new OAuthError('invalid_scope', `This client may not delegate ${kind}:${selector.source}.`);
    }
    (kind === 'publish' ? publish : subscribe).add(selector.source);
  }
  return { publish: [...publish], subscribe: [...subscribe] };
}

/** The `scope` of a token response: the grants as scope items. */
export function scopeOf(grants: TopicGrants): string {
  return [...grants.subscribe.map((s) => `subscribe:${s}`), ...grants.publish.map((s) => `publish:${s}`)].join(' ');
}
