import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../config.js';

/**
 * Makes sure the data directory exists and can be written, before anything is read from or
 * written to it, so a bad `DATA_DIR` stops the server at start (exit 78) with a message that
 * names it, instead of failing later or not at all.
 *
 * Missing directories are created one level at a time (mode 0700) rather than with
 * `mkdir({ recursive: true })`: Node's recursive mkdir loops forever where `mkdir` answers ENOENT
 * for a parent that exists (`/proc/x`), which made `DATA_DIR=/proc/x` hang the server.
 * @param setting the variable that named the directory, for the message (default `DATA_DIR`).
 * @throws ConfigError naming the setting and the path.
 */
export async function prepareDataDir(dir: string, setting = 'DATA_DIR'): Promise<void> {
  const absolute = path.resolve(dir);
  const fail = failure(absolute, setting);
  const missing = await missingDirectories(absolute, fail);
  for (const component of missing) {
    try {
      await mkdir(component, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') fail('cannot be created', error);
    }
  }
  await probeWrite(absolute, fail);
}

/**
 * The same checks as `prepareDataDir`, without creating anything (`notify config check`, and the
 * start-up checks before the server creates it): an existing directory must take a new file; a
 * missing one must be creatable, that is its nearest existing parent a writable directory.
 * @returns whether the directory exists already.
 * @throws ConfigError naming the setting and the path.
 */
export async function checkDataDir(dir: string, setting = 'DATA_DIR'): Promise<'exists' | 'missing'> {
  const absolute = path.resolve(dir);
  const fail = failure(absolute, setting);
  const missing = await missingDirectories(absolute, fail);
  if (missing.length === 0) {
    await probeWrite(absolute, fail);
    return 'exists';
  }
  const parent = path.dirname(missing[0]!);
  try {
    // access() answers EROFS for a read-only mount, which the permission bits do not show.
    await access(parent, constants.W_OK | constants.X_OK);
  } catch (error) {
    fail(`cannot be created in ${parent}`, error);
  }
  return 'missing';
}

type Fail = (problem: string, cause?: unknown) => never;

function failure(absolute: string, setting: string): Fail {
  return (problem, cause) => {
    const reason = cause === undefined ? '' : ` (${describe(cause)})`;
    throw new ConfigError(setting, `${absolute} ${problem}${reason}`);
  };
}

/** The directories to create, outermost first (empty when `absolute` exists). */
async function missingDirectories(absolute: string, fail: Fail): Promise<string[]> {
  const missing: string[] = [];
  for (let current = absolute; ; current = path.dirname(current)) {
    const kind = await kindOf(current).catch((error: unknown) => fail('cannot be checked', error));
    if (kind === 'directory') break;
    if (kind === 'other') fail(current === absolute ? 'is not a directory' : `cannot be created: ${current} is not a directory`);
    missing.unshift(current);
    if (path.dirname(current) === current) break;
  }
  return missing;
}

/** Permission bits do not tell (root passes every check, a read-only mount fails none): write a file. */
async function probeWrite(absolute: string, fail: Fail): Promise<void> {
  const probe = path.join(absolute, `.write-check-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(probe, 'wx', 0o600);
    await handle.close();
    await unlink(probe);
  } catch (error) {
    fail('is not writable', error);
  }
}

async function kindOf(file: string): Promise<'directory' | 'missing' | 'other'> {
  try {
    return (await stat(file)).isDirectory() ? 'directory' : 'other';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOTDIR: a parent is a file; the walk up reports which one.
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw error;
  }
}

/** `EACCES: permission denied`, without Node's repetition of the path. */
function describe(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === undefined) return message;
  const text = /^[A-Z]+: ([^,]+)/.exec(message)?.[1];
  return text === undefined ? code : `${code}: ${text}`;
}
