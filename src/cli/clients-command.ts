import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { hashPassword } from '../auth/password.js';
import type { Account } from '../auth/user-store.js';
import { ConflictError } from '../errors.js';
import { accountContext, accountNotFound, checkKnownRoles, checkNewAccount, requireKind, withServerOptions } from './accounts.js';
import { commandGroup, flag, stringList, type AccountContext, type CliCommand } from './command.js';

/** The role of a new service client when no `--role` is given. */
const DEFAULT_CLIENT_ROLE = 'publisher';
/** 256 bits: a secret nobody can guess, so its hash cannot be brute-forced either. */
const SECRET_BYTES = 32;

/**
 * Creates a service account (kind `service`) for the `client_credentials` grant and prints its
 * generated secret once; only its hash is stored.
 * @returns the account and the secret.
 * @throws ConflictError (`account_exists`), InvalidRequestError (`invalid_account_name`, `invalid_role`).
 */
export async function addClient(
  context: AccountContext,
  name: string,
  roles: readonly string[],
  options: { json?: boolean } = {},
): Promise<{ account: Account; secret: string }> {
  const granted = roles.length > 0 ? roles : [DEFAULT_CLIENT_ROLE];
  checkNewAccount(name, granted);
  if ((await context.store.get(name)) !== undefined) {
    throw new ConflictError('account_exists', `An account named "${name}" already exists.`);
  }
  checkKnownRoles(context, granted, 'notify clients add');
  const secret = newSecret(context);
  const passwordHash = await hashPassword(secret, { logN: context.scryptLogN });
  const account = await context.store.add({ name, kind: 'service', roles: granted, passwordHash });
  printSecret(context, account, secret, `Added service client "${name}" with roles: ${account.roles.join(', ') || '(none)'}.`, options);
  return { account, secret };
}

/** @throws NotFoundError (`account_not_found`), InvalidRequestError (`wrong_account_kind`). */
async function removeClient(context: AccountContext, name: string): Promise<void> {
  await requireKind(context, name, 'service');
  if (!(await context.store.remove(name))) throw accountNotFound(name);
  context.stdout.write(`Removed service client "${name}"; its tokens are revoked.\n`);
}

/**
 * Replaces a service client's secret (which revokes its tokens) and prints the new one once.
 * @throws NotFoundError (`account_not_found`), InvalidRequestError (`wrong_account_kind`).
 */
async function rotateClientSecret(
  context: AccountContext,
  name: string,
  options: { json?: boolean } = {},
): Promise<{ account: Account; secret: string }> {
  await requireKind(context, name, 'service');
  const secret = newSecret(context);
  const account = await context.store.setPasswordHash(name, await hashPassword(secret, { logN: context.scryptLogN }));
  printSecret(context, account, secret, `New secret for service client "${name}"; the old one no longer works.`, options);
  return { account, secret };
}

function newSecret(context: AccountContext): string {
  const bytes = (context.randomBytes ?? cryptoRandomBytes)(SECRET_BYTES);
  if (bytes.length !== SECRET_BYTES) throw new Error(`randomBytes returned ${bytes.length} bytes`);
  return Buffer.from(bytes).toString('base64url');
}

/** The secret goes on a line of its own, so scripts can take the last line. */
function printSecret(context: AccountContext, account: Account, secret: string, headline: string, options: { json?: boolean }): void {
  if (options.json === true) {
    context.stdout.write(`${JSON.stringify({ name: account.name, kind: account.kind, roles: account.roles, secret })}\n`);
    return;
  }
  context.stdout.write(`${headline}\nClient secret (it will not be shown again; store it now):\n${secret}\n`);
}

const JSON_OPTION = { json: { type: 'boolean' } } as const;
const JSON_HELP = ['--json', 'print {"name","kind","roles","secret"} as JSON'] as const;

/** `notify clients ...` */
export const clientsCommand: CliCommand = commandGroup(
  'clients',
  'Manage service clients: backends that get tokens with the client_credentials grant.',
  withServerOptions([
    {
      name: 'add',
      summary: 'Create a service client and print its secret once.',
      synopsis: '<name> [--role ROLE ...] [--json]',
      options: { role: { type: 'string', short: 'r', multiple: true }, ...JSON_OPTION },
      optionHelp: [['-r, --role ROLE', `grant a role (repeatable; default: ${DEFAULT_CLIENT_ROLE})`], JSON_HELP],
      positionals: { min: 1, max: 1 },
      async run({ values, positionals }, context) {
        await addClient(await accountContext(context, values), positionals[0]!, stringList(values.role), {
          json: flag(values.json),
        });
      },
    },
    {
      name: 'remove',
      summary: 'Delete a service client and revoke its tokens.',
      synopsis: '<name>',
      positionals: { min: 1, max: 1 },
      async run({ values, positionals }, context) {
        await removeClient(await accountContext(context, values), positionals[0]!);
      },
    },
    {
      name: 'rotate',
      summary: 'Replace the secret of a service client and print the new one once.',
      synopsis: '<name> [--json]',
      options: JSON_OPTION,
      optionHelp: [JSON_HELP],
      positionals: { min: 1, max: 1 },
      async run({ values, positionals }, context) {
        await rotateClientSecret(await accountContext(context, values), positionals[0]!, { json: flag(values.json) });
      },
    },
  ]),
);
