/**
 * Accounts that can obtain tokens: people (who sign in with a password at `/auth/login`) and
 * service clients (backends that use the `client_credentials` grant with a secret). Both carry
 * roles, which `roles.ts` turns into topic grants when a token is issued.
 */
export type AccountKind = 'user' | 'service';

export interface Account {
  /** The login name or client id; also the token's `sub`. Matches `ACCOUNT_NAME`. */
  readonly name: string;
  readonly kind: AccountKind;
  readonly roles: readonly string[];
  /** A PHC-style scrypt string from `password.ts`; never the password itself. */
  readonly passwordHash: string;
  /** Epoch milliseconds of the last credential change; tokens issued before it are revoked. */
  readonly credentialsChangedAt: number;
  readonly createdAt: number;
}

/**
 * Account names double as topic segments (`users/{sub}/inbox`), so they use a strict subset of
 * the topic character set: lower-case, starting with a letter or digit.
 */
export const ACCOUNT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Any token subject: a local account name, or a subject from elsewhere (an external issuer's, or
 * one a backend named in a token exchange) written as `<namespace>~<name>`. Subjects are whole
 * topic segments (RFC 3986 unreserved characters, at most 64, not only dots), so `users/{sub}/**`
 * always expands to a valid selector. `~` never occurs in an account name, so a namespaced subject
 * can never be mistaken for a local account.
 */
export const SUBJECT_NAME = /^(?!\.+$)[A-Za-z0-9._~-]{1,64}$/;
/** Separates a subject's namespace from its name (`kc~alice`). */
export const NAMESPACE_SEPARATOR = '~';

/** A change seen by a store: the server revokes the subject's tokens and streams on each. */
export interface AccountChange {
  readonly name: string;
  readonly reason: 'removed' | 'credentials_changed' | 'roles_changed';
}

export interface UserStore {
  get(name: string): Promise<Account | undefined>;
  list(): Promise<Account[]>;
  /** @throws ConflictError (`account_exists`) when the name is taken. */
  add(account: Omit<Account, 'createdAt' | 'credentialsChangedAt'>): Promise<Account>;
  /** @returns false when there was no such account. */
  remove(name: string): Promise<boolean>;
  /** @throws NotFoundError (`account_not_found`). */
  setRoles(name: string, roles: readonly string[]): Promise<Account>;
  /** @throws NotFoundError (`account_not_found`). Bumps `credentialsChangedAt`. */
  setPasswordHash(name: string, passwordHash: string): Promise<Account>;
  /**
   * Calls `listener` for each account that was removed or whose credentials or roles changed,
   * including changes made by another process (the CLI) to the same backing file.
   * Returns a function that stops listening.
   */
  watch(listener: (change: AccountChange) => void): () => void;
  close(): Promise<void>;
}
