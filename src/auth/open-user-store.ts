import { ConfigError } from '../config.js';
import { AppError } from '../errors.js';
import { FileUserStore, type FileUserStoreOptions } from './file-user-store.js';

/**
 * Opens the server's user file and reads it once before the server starts, so a file that is
 * truncated, of the wrong shape, a directory or unreadable stops the start (exit 78) with a
 * message that names it. Without this the server started, `/readyz` said ready, and every sign-in
 * answered 500 `user_store_corrupt`. A missing file is an empty store (the CLI creates it).
 * Later damage (a hand edit while running) keeps the last good accounts (`onError`).
 * @throws ConfigError (`USERS_FILE`) naming the file.
 */
export async function openFileUserStore(options: FileUserStoreOptions): Promise<FileUserStore> {
  const store = new FileUserStore(options);
  try {
    await store.list();
  } catch (error) {
    await store.close();
    // The store's own messages name the file ("The user store /x/users.json is not valid JSON.").
    if (error instanceof AppError) throw new ConfigError('USERS_FILE', error.message);
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? (error as Error).message})`;
    throw new ConfigError('USERS_FILE', `the user file ${store.file} ${why}`);
  }
  return store;
}
