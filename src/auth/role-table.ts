import { z } from 'zod';
import { parseSelector } from '../topics/selector.js';

/** A role's name: what accounts list and tokens carry. */
export const ROLE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** The placeholder a role's selector may hold for the account it is resolved for. */
export const SUBJECT_PLACEHOLDER = '{sub}';

/**
 * Why a configured selector template is unusable, with `{sub}` standing for a sample subject:
 * a placeholder is a whole segment, no other placeholder exists, and what remains is a valid
 * selector. `undefined` when it is fine.
 */
function templateSelectorProblem(selector: string): string | undefined {
  const expanded = selector.replaceAll(SUBJECT_PLACEHOLDER, 'sample~subject');
  if (expanded.includes('{') || expanded.includes('}')) return `selector ${JSON.stringify(selector)} has a placeholder other than {sub}`;
  if (selector.includes(SUBJECT_PLACEHOLDER) && !selector.split('/').includes(SUBJECT_PLACEHOLDER)) {
    return `selector ${JSON.stringify(selector)}: {sub} must be a whole segment`;
  }
  try {
    parseSelector(expanded);
  } catch (error) {
    return `selector ${JSON.stringify(selector)}: ${(error as Error).message}`;
  }
  return undefined;
}

/**
 * Up to 64 selectors in which `{sub}` may stand for a subject: a role's grants and `delegate`, an
 * issuer's fixed grants (`auth/issuer-config.ts`).
 */
export const selectorTemplates = z
  .array(z.string().min(1).max(300))
  .max(64)
  .default([])
  .superRefine((selectors, ctx) => {
    for (const [index, selector] of selectors.entries()) {
      const problem = templateSelectorProblem(selector);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: [index], message: problem });
    }
  });

/** What a role may do besides publishing and subscribing (`auth/delegation.ts`). */
const PERMISSIONS = ['manage_accounts', 'revoke_subjects'] as const;
export type Permission = (typeof PERMISSIONS)[number];

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
      publish: selectorTemplates,
      subscribe: selectorTemplates,
      /** Topics whose presence the role may read (`GET /presence`) without subscribing to them. */
      presence: selectorTemplates,
      /** What a service client with this role may mint for others by token exchange (`auth/delegation.ts`). */
      delegate: z.object({ publish: selectorTemplates, subscribe: selectorTemplates }).strict().optional(),
      permissions: z.array(z.enum(PERMISSIONS)).max(PERMISSIONS.length).optional(),
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
