import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { AppError, ConflictError, InvalidRequestError, NotFoundError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { ROLE_NAME } from './role-table.js';
import { withFileLock, type FileLockOptions } from '../fs/file-lock.js';
import { ACCOUNT_NAME, type Account, type AccountChange, type UserStore } from './user-store.js';
/** An account holds few roles; the bound keeps tokens (which list them) small. */
const MAX_ROLES = 32;
/**
 * Refuse to load files larger than this: the whole store is held in memory and re-read on every
 * change. 64 MiB is a quarter of a million accounts at ~250 bytes each, far more than a file store
 * is meant for.
 */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

const accountSchema = z
  .object({
    name: z.string().regex(ACCOUNT_NAME),
    kind: z.enum(['user', 'service']),
    roles: z.array(z.string().regex(ROLE_NAME)).max(MAX_ROLES),
    passwordHash: z.string().min(1).max(1024),
    credentialsChangedAt: z.number().int().nonnegative(),
    createdAt: z.number().int().nonnegative(),
  })
  .strict();

const fileSchema = z
  .object({
    version: z.literal(1),
    accounts: z.array(accountSchema),
  })
  .strict();

export interface FileUserStoreOptions {
  /** The JSON file; it and its directory are created on the first write. */
  readonly file: string;
  /** Epoch milliseconds for `createdAt` and `credentialsChangedAt`; default `Date.now`. */
  readonly clock?: () => number;
  /** How often `watch` polls the file for changes by other processes; default 1000 ms. */
  readonly pollIntervalMs?: number;
  /**
   * Called when a reload triggered by polling fails (say, the file was hand-edited into invalid
   * JSON) or a listener throws; the store keeps its last good accounts. Default: a process warning.
   */
  readonly onError?: (error: unknown) => void;
  /** The lock between processes around each change (`fs/file-lock.ts`); default 10 s timeout. */
  readonly lock?: FileLockOptions;
}

/** Identifies one version of the file: rename-over gives every write a new inode. */
type Signature = string;
const MISSING: Signature = 'missing';

/**
 * A `UserStore` kept in one JSON file (`{ "version": 1, "accounts": [...] }`), shared by the
 * server and the `notify` CLI.
 *
 * - Every write replaces the file atomically (`writeFileAtomic`: temp file with mode 0600 in the
 *   same directory, fsync, rename over the target, fsync the directory), so a crash leaves either the old or the
 *   new store, never half of one.
 * - Every operation of one instance runs in one promise chain, and every change also holds
 *   the advisory lock `<file>.lock` between processes (`fs/file-lock.ts`) from re-reading the file
 *   to renaming the new one into place, so changes made at the same moment by any number of
 *   processes (CLI runs, servers) all land. A change that cannot get the lock in time fails with
 *   `FileLockTimeoutError` and changes nothing. Each operation first re-reads the file if it
 *   changed on disk (one `fstat` otherwise).
 * - `watch` polls with `fs.watchFile` (portable, and works on network file systems and with
 *   rename-over, unlike `fs.watch`).
 */
export class FileUserStore implements UserStore {
  readonly #file: string;
  readonly #clock: () => number;
  readonly #pollIntervalMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #lock: FileLockOptions;
  readonly #listeners = new Set<(change: AccountChange) => void>();
  #accounts: ReadonlyMap<string, Account> = new Map();
  #signature: Signature | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #polling = false;
  #closed = false;

  constructor(options: FileUserStoreOptions) {
    if (typeof options.file !== 'string' || options.file.length === 0) {
      throw new TypeError('FileUserStore needs a file');
    }
    const pollIntervalMs = options.pollIntervalMs ?? 1000;
    if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 1) {
      throw new RangeError('pollIntervalMs must be a positive number');
    }
    this.#file = path.resolve(options.file);
    this.#clock = options.clock ?? Date.now;
    this.#pollIntervalMs = pollIntervalMs;
    this.#onError = options.onError ?? ((error) => process.emitWarning(error as Error));
    this.#lock = options.lock ?? {};
  }

  /** The absolute path of the backing file. */
  get file(): string {
    return this.#file;
  }

  async get(name: string): Promise<Account | undefined> {
    return this.#exclusive(async () => {
      await this.#refresh();
      return this.#accounts.get(name);
    });
  }

  /** All accounts, sorted by name. */
  async list(): Promise<Account[]> {
    return this.#exclusive(async () => {
      await this.#refresh();
      return [...this.#accounts.values()];
    });
  }

  /**
   * @throws InvalidRequestError (`invalid_account_name`, `invalid_role`, `invalid_request`)
   * @throws ConflictError (`account_exists`)
   */
  async add(input: Omit<Account, 'createdAt' | 'credentialsChangedAt'>): Promise<Account> {
    const name = checkName(input.name);
    const roles = checkRoles(input.roles);
    if (input.kind !== 'user' && input.kind !== 'service') {
      throw new InvalidRequestError('kind must be "user" or "service".', { field: 'kind' });
    }
    checkHash(input.passwordHash);
    return this.#change(async () => {
      await this.#refresh();
      if (this.#accounts.has(name)) {
        throw new ConflictError('account_exists', `An account named "${name}" already exists.`);
      }
      const now = this.#clock();
      const account = freeze({
        name,
        kind: input.kind,
        roles,
        passwordHash: input.passwordHash,
        credentialsChangedAt: now,
        createdAt: now,
      });
      await this.#commit(new Map(this.#accounts).set(name, account));
      return account;
    });
  }

  async remove(name: string): Promise<boolean> {
    return this.#change(async () => {
      await this.#refresh();
      if (!this.#accounts.has(name)) return false;
      const next = new Map(this.#accounts);
      next.delete(name);
      await this.#commit(next);
      return true;
    });
  }

  /** @throws InvalidRequestError (`invalid_role`), NotFoundError (`account_not_found`). */
  async setRoles(name: string, roles: readonly string[]): Promise<Account> {
    const checked = checkRoles(roles);
    return this.#update(name, (account) => ({ ...account, roles: checked }));
  }

  /**
   * Bumps `credentialsChangedAt` to the clock, or one millisecond past its previous value when the
   * clock has not moved, so the change is always visible.
   * @throws NotFoundError (`account_not_found`).
   */
  async setPasswordHash(name: string, passwordHash: string): Promise<Account> {
    checkHash(passwordHash);
    return this.#update(name, (account) => ({
      ...account,
      passwordHash,
      credentialsChangedAt: Math.max(this.#clock(), account.credentialsChangedAt + 1),
    }));
  }

  watch(listener: (change: AccountChange) => void): () => void {
    if (this.#closed) throw new Error('FileUserStore is closed');
    // Wrap, so the same function registered twice is two subscriptions.
    const entry = (change: AccountChange) => listener(change);
    this.#listeners.add(entry);
    this.#startPolling();
    return () => {
      this.#listeners.delete(entry);
      if (this.#listeners.size === 0) this.#stopPolling();
    };
  }

  /** Stops polling and waits for pending writes; later calls reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopPolling();
    this.#listeners.clear();
    await this.#queue;
  }

  async #update(name: string, change: (account: Account) => Account): Promise<Account> {
    return this.#change(async () => {
      await this.#refresh();
      const current = this.#accounts.get(name);
      if (current === undefined) {
        throw new NotFoundError(`No account named "${name}".`, 'account_not_found');
      }
      const updated = freeze(change(current));
      await this.#commit(new Map(this.#accounts).set(name, updated));
      return updated;
    });
  }

  /** A read-change-write: queued like every operation, and under the file lock between processes. */
  #change<T>(task: () => Promise<T>): Promise<T> {
    return this.#exclusive(() => withFileLock(this.#file, task, this.#lock));
  }

  /** Runs `task` after every task queued before it. */
  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('FileUserStore is closed'));
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  readonly #onPoll = (current: Stats, previous: Stats): void => {
    if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino && current.size === previous.size) {
      return;
    }
    this.#exclusive(() => this.#refresh()).catch((error: unknown) => {
      if (!this.#closed) this.#onError(error);
    });
  };

  #startPolling(): void {
    if (this.#polling) return;
    this.#polling = true;
    // persistent: false unrefs the timer, so a watching store never keeps the process alive.
    watchFile(this.#file, { interval: this.#pollIntervalMs, persistent: false }, this.#onPoll);
    // Load now, so the first poll has something to diff against.
    this.#exclusive(() => this.#refresh()).catch((error: unknown) => this.#onError(error));
  }

  #stopPolling(): void {
    if (!this.#polling) return;
    this.#polling = false;
    unwatchFile(this.#file, this.#onPoll);
  }

  /** Re-reads the file if it changed since it was last read or written by this instance. */
  async #refresh(): Promise<void> {
    let handle;
    try {
      handle = await open(this.#file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw this.#loadError('cannot be opened', error);
      if (this.#signature !== MISSING) this.#replace(new Map(), MISSING);
      return;
    }
    try {
      const stats = await handle.stat();
      const signature = signatureOf(stats);
      if (signature === this.#signature) return;
      if (stats.size > MAX_FILE_BYTES) throw this.#loadError(`is larger than ${MAX_FILE_BYTES} bytes`);
      const text = await handle.readFile('utf8');
      this.#replace(this.#parse(text), signature);
    } finally {
      await handle.close();
    }
  }

  #parse(text: string): Map<string, Account> {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw this.#loadError('is not valid JSON', error);
    }
    const result = fileSchema.safeParse(raw);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const where = issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
      throw this.#loadError(`is not a valid user store${where}: ${issue.message}`, result.error);
    }
    const accounts = new Map<string, Account>();
    for (const account of result.data.accounts) {
      if (accounts.has(account.name)) throw this.#loadError(`lists the account "${account.name}" twice`);
      accounts.set(account.name, freeze(account));
    }
    return accounts;
  }

  #loadError(problem: string, cause?: unknown): AppError {
    return new AppError(500, 'user_store_corrupt', `The user store ${this.#file} ${problem}.`, { cause });
  }

  /** Writes `accounts` atomically, then makes them current. */
  async #commit(accounts: Map<string, Account>): Promise<void> {
    const sorted = [...accounts.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const text = `${JSON.stringify({ version: 1, accounts: sorted }, null, 2)}\n`;
    const signature = signatureOf(await writeFileAtomic(this.#file, text));
    this.#replace(new Map(sorted.map((account) => [account.name, account])), signature);
  }

  /** Makes `next` current and tells listeners what changed. */
  #replace(next: ReadonlyMap<string, Account>, signature: Signature): void {
    const previous = this.#accounts;
    this.#accounts = next;
    this.#signature = signature;
    for (const change of diffAccounts(previous, next)) {
      for (const listener of [...this.#listeners]) {
        try {
          listener(change);
        } catch (error) {
          this.#onError(error);
        }
      }
    }
  }
}

/**
 * What changed between two versions of the store, in name order. An account whose credentials and
 * roles both changed gives two changes. New accounts give none: nothing to revoke.
 */
function diffAccounts(previous: ReadonlyMap<string, Account>, next: ReadonlyMap<string, Account>): AccountChange[] {
  const changes: AccountChange[] = [];
  const names = [...previous.keys()].sort();
  for (const name of names) {
    const before = previous.get(name)!;
    const after = next.get(name);
    if (after === undefined) {
      changes.push({ name, reason: 'removed' });
      continue;
    }
    if (after.passwordHash !== before.passwordHash || after.credentialsChangedAt !== before.credentialsChangedAt) {
      changes.push({ name, reason: 'credentials_changed' });
    }
    if (!sameRoles(before.roles, after.roles)) changes.push({ name, reason: 'roles_changed' });
  }
  return changes;
}

function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && b.every((role) => set.has(role));
}

function signatureOf(stats: Stats): Signature {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}`;
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !ACCOUNT_NAME.test(name)) {
    throw new InvalidRequestError('An account name is 1 to 64 characters from a-z 0-9 . _ - and starts with a letter or digit.', {
      code: 'invalid_account_name',
      field: 'name',
    });
  }
  return name;
}

/** Checks role names and drops duplicates, keeping the first order. */
function checkRoles(roles: unknown): readonly string[] {
  if (!Array.isArray(roles)) {
    throw new InvalidRequestError('roles must be an array.', { code: 'invalid_role', field: 'roles' });
  }
  for (const role of roles) {
    if (typeof role !== 'string' || !ROLE_NAME.test(role)) {
      throw new InvalidRequestError(
        `Invalid role "${String(role)}": a role is 1 to 32 characters from a-z 0-9 _ - and starts with a letter.`,
        { code: 'invalid_role', field: 'roles' },
      );
    }
  }
  const unique = [...new Set(roles as string[])];
  if (unique.length > MAX_ROLES) {
    throw new InvalidRequestError(`An account has at most ${MAX_ROLES} roles.`, { code: 'invalid_role', field: 'roles' });
  }
  return unique;
}

function checkHash(passwordHash: unknown): void {
  if (typeof passwordHash !== 'string' || passwordHash.length === 0 || passwordHash.length > 1024) {
    throw new InvalidRequestError('passwordHash must be a non-empty string.', { field: 'passwordHash' });
  }
}

function freeze(account: Account): Account {
  return Object.freeze({ ...account, roles: Object.freeze([...account.roles]) });
}
