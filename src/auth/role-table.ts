import { z } from 'zod';
import { parseSelector } from '../topics/selector.js';

/** A role's name: what accounts list and tokens carry. */
export const ROLE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** The placeholder a role's selector may hold for the account it is resolved for. */
export const SUBJECT_PLACEHOLDER = '{sub}';

/**
 * A role's selector, checked with `{sub}` standing for a sample account name: a placeholder is a
 * whole segment, no other placeholder exists, and what remains is a valid selector.
 */
const roleSelector = z
  .string()
  .min(1)
  .max(300)
  .superRefine((selector, ctx) => {
    const expanded = selector.replaceAll(SUBJECT_PLACEHOLDER, 'sample-account');
    if (expanded.includes('{') || expanded.includes('}')) {
      ctx.addIssue({ code: 'custom', message: `selector ${JSON.stringify(selector)} has a placeholder other than {sub}` });
      return;
    }
    try {
      parseSelector(expanded);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `selector ${JSON.stringify(selector)}: ${(error as Error).message}` });
      return;
    }
    if (selector.includes(SUBJECT_PLACEHOLDER) && !selector.split('/').includes(SUBJECT_PLACEHOLDER)) {
      ctx.addIssue({ code: 'custom', message: `selector ${JSON.stringify(selector)}: {sub} must be a whole segment` });
    }
  });

/**
 * The role table: role name -> topic selectors it may publish to, subscribe to, and read the
 * presence of (`ROLES_FILE`). A `presence` grant lets its holder read who is present on the topics
 * it covers (`GET /presence`, the reconciliation snapshot and open connections) without
 * subscribing to them: what a service that keeps an application's view of "who is online" needs.
 */
export const roleTableSchema = z.record(
  z.string().regex(ROLE_NAME, 'role names are 1 to 32 characters of a-z 0-9 _ -, starting with a letter'),
  z
    .object({
      publish: z.array(roleSelector).max(64).default([]),
      subscribe: z.array(roleSelector).max(64).default([]),
      presence: z.array(roleSelector).max(64).default([]),
    })
    .strict(),
);

export type RoleTable = z.output<typeof roleTableSchema>;

/**
 * The embedded default roles. `{sub}` is the account name, so every account has a private
 * inbox under `users/{sub}/`. Publishers may write to any inbox and to public topics; admins may
 * do anything, reading every topic's presence included.
 */
export const DEFAULT_ROLES: RoleTable = {
  user: { publish: [], subscribe: ['users/{sub}/**', 'public/**'], presence: [] },
  publisher: { publish: ['public/**', 'users/*/**'], subscribe: ['public/**'], presence: [] },
  admin: { publish: ['**'], subscribe: ['**'], presence: ['**'] },
};
