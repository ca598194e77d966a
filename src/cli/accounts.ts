import { ROLE_NAME } from '../auth/role-table.js';
import { ACCOUNT_NAME, type Account, type AccountKind } from '../auth/user-store.js';
import { InvalidRequestError, NotFoundError } from '../errors.js';
import { UsageError, type AccountContext, type CliContext, type ParsedValues, type ServiceOptions, type Subcommand } from './command.js';

/** Helpers shared by the `users` and `clients` commands. */

/** `--data-dir DIR` and `--config FILE`, accepted by every command that reads the server's configuration. */
export const SERVER_OPTIONS = { 'data-dir': { type: 'string' }, config: { type: 'string' } } as const;
export const DATA_DIR_HELP = ['--data-dir DIR', "the server's data directory (default: $DATA_DIR, or ./data)"] as const;
export const CONFIG_HELP = ['--config FILE', "the server's configuration file (default: $NOTIFY_CONFIG, or none)"] as const;

/** Adds `--data-dir` and `--config` to the options and help of each subcommand. */
export function withServerOptions(subcommands: readonly Subcommand[]): Subcommand[] {
  return subcommands.map((sub) => ({
    ...sub,
    options: { ...sub.options, ...SERVER_OPTIONS },
    optionHelp: [...(sub.optionHelp ?? []), DATA_DIR_HELP, CONFIG_HELP],
  }));
}

/** The `ServiceOptions` a command line gives. */
export function serviceOptions(values: ParsedValues): ServiceOptions {
  const dataDir = values['data-dir'];
  const configFile = values.config;
  if (dataDir === '') throw new UsageError('--data-dir needs a directory');
  if (configFile === '') throw new UsageError('--config needs a file');
  return { ...(typeof dataDir === 'string' ? { dataDir } : {}), ...(typeof configFile === 'string' ? { configFile } : {}) };
}

/** The streams and the (lazily opened) services as one `AccountContext`. */
export async function accountContext(context: CliContext, values: ParsedValues = {}): Promise<AccountContext> {
  const services = await context.services(serviceOptions(values));
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

/**
 * Refuses roles the server's role table does not define: they would grant nothing, and a typo
 * (`--role publsher`) would leave an account that silently cannot do its job.
 * @param commandLine the command as typed (`notify users add`), for the usage error.
 * @throws UsageError naming the known roles (exit code 2).
 */
export function checkKnownRoles(context: { readonly knownRoles: readonly string[] }, roles: readonly string[], commandLine: string): void {
  const unknown = roles.filter((role) => !context.knownRoles.includes(role));
  if (unknown.length === 0) return;
  const known = context.knownRoles.length === 0 ? 'none' : context.knownRoles.join(', ');
  throw new UsageError(
    `unknown role${unknown.length > 1 ? 's' : ''} ${unknown.map((role) => `"${role}"`).join(', ')}: the role table has ${known} (ROLES_FILE changes it)`,
    commandLine,
  );
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
