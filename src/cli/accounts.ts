import { ROLE_NAME } from '../auth/role-table.js';
import { ACCOUNT_NAME, type Account, type AccountKind } from '../auth/user-store.js';
import { InvalidRequestError, NotFoundError } from '../errors.js';
import type { AccountContext, CliContext, CliStreams } from './command.js';

/** Helpers shared by the `users` and `clients` commands. */

/** The streams and the (lazily opened) services as one `AccountContext`. */
export async function accountContext(context: CliContext): Promise<AccountContext> {
  const services = await context.services();
  return {
    store: services.store,
    scryptLogN: services.scryptLogN,
    knownRoles: services.knownRoles,
    ...(services.randomBytes === undefined ? {} : { randomBytes: services.randomBytes }),
    stdin: context.stdin,
    stdout: context.stdout,
    stderr: context.stderr,
  };
}

/** Warns (on stderr) about roles the server's role table does not define: they grant nothing. */
export function warnUnknownRoles(
  context: Pick<CliStreams, 'stderr'> & { readonly knownRoles: readonly string[] },
  roles: readonly string[],
): void {
  for (const role of roles) {
    if (!context.knownRoles.includes(role)) {
      context.stderr.write(`warning: role "${role}" is not in the role table; it grants nothing\n`);
    }
  }
}

/**
 * Fails unless `name` exists and is of `kind`, so `users remove` cannot delete a service client
 * by mistake (and the reverse).
 * @throws NotFoundError (`account_not_found`), InvalidRequestError (`wrong_account_kind`).
 */
export async function requireKind(context: AccountContext, name: string, kind: AccountKind): Promise<Account> {
  const account = await context.store.get(name);
  if (account === undefined) throw accountNotFound(name);
  if (account.kind !== kind) {
    const what = account.kind === 'user' ? 'a user' : 'a service client';
    const command = account.kind === 'user' ? 'users' : 'clients';
    throw new InvalidRequestError(`"${name}" is ${what}; use 'notify ${command}'.`, { code: 'wrong_account_kind' });
  }
  return account;
}

export function accountNotFound(name: string): NotFoundError {
  return new NotFoundError(`No account named "${name}".`, 'account_not_found');
}

/**
 * Checks a new account's name and roles the way the store will, before any password is asked
 * for, so a typo does not cost two password prompts.
 * @throws InvalidRequestError (`invalid_account_name`, `invalid_role`).
 */
export function checkNewAccount(name: string, roles: readonly string[]): void {
  if (!ACCOUNT_NAME.test(name)) {
    throw new InvalidRequestError(
      `Invalid account name "${name}": use 1 to 64 characters from a-z 0-9 . _ - starting with a letter or digit.`,
      { code: 'invalid_account_name' },
    );
  }
  for (const role of roles) {
    if (!ROLE_NAME.test(role)) {
      throw new InvalidRequestError(`Invalid role "${role}": use 1 to 32 characters from a-z 0-9 _ - starting with a letter.`, {
        code: 'invalid_role',
      });
    }
  }
}
