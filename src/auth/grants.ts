import { SUBJECT_PLACEHOLDER, type RoleTable } from './role-table.js';
import type { TopicGrants } from './token-service.js';

/**
 * Turns an account's roles into the topic grants its token carries. `{sub}` in a role's selector
 * becomes the account name, so `users/{sub}/**` is a private inbox. Account names are a subset of
 * the topic segment character set (see `ACCOUNT_NAME`), so the expansion is always a valid selector.
 * Unknown roles grant nothing.
 */
export function resolveGrants(roles: RoleTable, accountRoles: readonly string[], subject: string): TopicGrants {
  const publish = new Set<string>();
  const subscribe = new Set<string>();
  const presence = new Set<string>();
  for (const role of accountRoles) {
    const entry = Object.hasOwn(roles, role) ? roles[role] : undefined;
    if (entry === undefined) continue;
    for (const selector of entry.publish) publish.add(selector.replaceAll(SUBJECT_PLACEHOLDER, subject));
    for (const selector of entry.subscribe) subscribe.add(selector.replaceAll(SUBJECT_PLACEHOLDER, subject));
    for (const selector of entry.presence) presence.add(selector.replaceAll(SUBJECT_PLACEHOLDER, subject));
  }
  return { publish: [...publish], subscribe: [...subscribe], presence: [...presence] };
}
