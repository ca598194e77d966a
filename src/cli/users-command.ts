import { hashPassword } from '../auth/password.js';
import type { Account } from '../auth/user-store.js';
import { ConflictError } from '../errors.js';
import { accountContext, accountNotFound, checkKnownRoles, checkNewAccount, requireKind, withServerOptions } from './accounts.js';
import { commandGroup, flag, stringList, type AccountContext, type CliCommand } from './command.js';
import { readNewPassword } from './password-input.js';

/** The role of a new person's account when no `--role` is given. */
const DEFAULT_USER_ROLE = 'user';

/**
 * Creates a person's account. The name is checked before the password is asked for, so a typo
 * does not cost two password prompts.
 * @throws ConflictError (`account_exists`), InvalidRequestError (`invalid_account_name`,
 * `invalid_role`, `invalid_password`), CliError (no password).
 */
export async function addUser(context: AccountContext, name: string, roles: readonly string[]): Promise<Account> {
  const granted = roles.length > 0 ? roles : [DEFAULT_USER_ROLE];
  checkNewAccount(name, granted);
  if ((await context.store.get(name)) !== undefined) {
    throw new ConflictError('account_exists', `An account named "${name}" already exists.`);
  }
  checkKnownRoles(context, granted, 'notify users add');
  const password = await readNewPassword(context);
  const passwordHash = await hashPassword(password, { logN: context.scryptLogN });
  const account = await context.store.add({ name, kind: 'user', roles: granted, passwordHash });
  context.stdout.write(`Added user "${account.name}" with roles: ${account.roles.join(', ') || '(none)'}.\n`);
  return account;
}

/** @throws NotFoundError (`account_not_found`) when there is no such user. */
async function removeUser(context: AccountContext, name: string): Promise<void> {
  await requireKind(context, name, 'user');
  if (!(await context.store.remove(name))) throw accountNotFound(name);
  context.stdout.write(`Removed user "${name}"; their tokens and streams are revoked.\n`);
}

/** Replaces an account's roles (users and service clients alike). */
async function setRoles(context: AccountContext, name: string, roles: readonly string[]): Promise<Account> {
  checkKnownRoles(context, roles, 'notify users roles');
  const account = await context.store.setRoles(name, roles);
  context.stdout.write(`Roles of "${account.name}": ${account.roles.join(', ') || '(none)'}.\n`);
  return account;
}

/** Sets a new password for a person's account, which revokes their tokens. */
async function changePassword(context: AccountContext, name: string): Promise<void> {
  await requireKind(context, name, 'user');
  const password = await readNewPassword(context);
  const passwordHash = await hashPassword(password, { logN: context.scryptLogN });
  await context.store.setPasswordHash(name, passwordHash);
  context.stdout.write(`Changed the password of "${name}"; their tokens and streams are revoked.\n`);
}

/**
 * Prints every account (people and service clients): a table, or with `json` a JSON array of
 * `{ name, kind, roles, createdAt, credentialsChangedAt }` (ISO 8601 dates). Hashes are never
 * printed.
 */
async function listAccounts(context: AccountContext, options: { json?: boolean } = {}): Promise<void> {
  const accounts = await context.store.list();
  if (options.json === true) {
    const rows = accounts.map((account) => ({
      name: account.name,
      kind: account.kind,
      roles: account.roles,
      createdAt: new Date(account.createdAt).toISOString(),
      credentialsChangedAt: new Date(account.credentialsChangedAt).toISOString(),
    }));
    context.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (accounts.length === 0) {
    context.stdout.write('No accounts.\n');
    return;
  }
  const rows: Array<[string, string, string, string]> = [
    ['NAME', 'KIND', 'ROLES', 'CREATED'],
    ...accounts.map(
      (account) =>
        [account.name, account.kind, account.roles.join(',') || '-', new Date(account.createdAt).toISOString()] as [
          string,
          string,
          string,
          string,
        ],
    ),
  ];
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) {
    const line = row.map((cell, column) => (column < 3 ? cell.padEnd(widths[column]!) : cell)).join('  ');
    context.stdout.write(`${line}\n`);
  }
}

const PASSWORD_INPUT =
  'The password is read from the first line of standard input when it is not a terminal, otherwise it is asked for twice with echo off. It is never taken from the command line.';

/** `notify users ...` */
export const usersCommand: CliCommand = commandGroup(
  'users',
  'Manage the accounts of people who sign in with a password.',
  withServerOptions([
    {
      name: 'add',
      summary: 'Create a user account.',
      synopsis: '<name> [--role ROLE ...]',
      description: PASSWORD_INPUT,
      options: { role: { type: 'string', short: 'r', multiple: true } },
      optionHelp: [['-r, --role ROLE', `grant a role (repeatable; default: ${DEFAULT_USER_ROLE})`]],
      positionals: { min: 1, max: 1 },
      async run({ values, positionals }, context) {
        await addUser(await accountContext(context, values), positionals[0]!, stringList(values.role));
      },
    },
    {
      name: 'remove',
      summary: 'Delete a user account and revoke its tokens.',
      synopsis: '<name>',
      positionals: { min: 1, max: 1 },
      async run({ values, positionals }, context) {
        await removeUser(await accountContext(context, values), positionals[0]!);
      },
    },
    {
      name: 'list',
      summary: 'List all accounts (users and service clients).',
      synopsis: '[--json]',
      options: { json: { type: 'boolean' } },
      optionHelp: [['--json', 'print JSON instead of a table']],
      positionals: { min: 0, max: 0 },
      async run({ values }, context) {
        await listAccounts(await accountContext(context, values), { json: flag(values.json) });
      },
    },
    {
      name: 'roles',
      summary: "Replace an account's roles.",
      synopsis: '<name> <role> [<role> ...]',
      positionals: { min: 2, max: 33 },
      async run({ values, positionals }, context) {
        const [name, ...roles] = positionals;
        await setRoles(await accountContext(context, values), name!, roles);
      },
    },
    {
      name: 'passwd',
      summary: "Change a user's password and revoke their tokens.",
      synopsis: '<name>',
      description: PASSWORD_INPUT,
      positionals: { min: 1, max: 1 },
      async run({ values, positionals }, context) {
        await changePassword(await accountContext(context, values), positionals[0]!);
      },
    },
  ]),
);
