import type { RoleTable } from '../config.js';
import { parseSelector } from '../topics/selector.js';
import type { TopicGrants } from './token-service.js';

const SUBJECT_PLACEHOLDER = '{sub}';

/**
 * Turns an account's roles into the topic grants its token carries. `{sub}` in a role's selector
 * becomes the account name, so `users/{sub}/**` is a private inbox. Account names are a subset of
 * the topic segment character set (see `ACCOUNT_NAME`), so the expansion is always a valid selector.
 * Unknown roles grant nothing.
 */
export function resolveGrants(roles: RoleTable, accountRoles: readonly string[], subject: string): TopicGrants {
  const publish = new Set<string>();
  const subscribe = new Set<string>();
  for (const role of accountRoles) {
    const entry = Object.hasOwn(roles, role) ? roles[role] : undefined;
    if (entry === undefined) continue;
    for (const selector of entry.publish) publish.add(selector.replaceAll(SUBJECT_PLACEHOLDER, subject));
    for (const selector of entry.subscribe) subscribe.add(selector.replaceAll(SUBJECT_PLACEHOLDER, subject));
  }
  return { publish: [...publish], subscribe: [...subscribe] };
}

/**
 * Checks every selector of a role table, with `{sub}` standing for a sample account name.
 * @throws Error naming the role and selector that is not valid.
 */
export function validateRoleTable(roles: RoleTable): void {
  for (const [role, entry] of Object.entries(roles)) {
    for (const selector of [...entry.publish, ...entry.subscribe]) {
      const expanded = selector.replaceAll(SUBJECT_PLACEHOLDER, 'sample-account');
      if (expanded.includes('{') || expanded.includes('}')) {
        throw new Error(`role ${role}: selector ${JSON.stringify(selector)} has a placeholder other than {sub}`);
      }
      try {
        parseSelector(expanded);
      } catch (error) {
        throw new Error(`role ${role}: selector ${JSON.stringify(selector)}: ${(error as Error).message}`);
      }
      if (selector.includes(SUBJECT_PLACEHOLDER) && !selector.split('/').includes(SUBJECT_PLACEHOLDER)) {
        throw new Error(`role ${role}: selector ${JSON.stringify(selector)}: {sub} must be a whole segment`);
      }
    }
  }
}
