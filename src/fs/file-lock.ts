import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface FileLockOptions {
  /** How long to wait for another holder before giving up; default 10 s. */
  readonly timeoutMs?: number;
  /**
   * A lock older than this is stale even if its holder looks alive (a holder on another host, or
   * a reused process id); default 30 s. The critical sections this guards (read, change, write
   * and fsync one file) take milliseconds, so this is far beyond any real holder.
   */
  readonly staleMs?: number;
  /** Epoch milliseconds; default `Date.now`. */
  readonly clock?: () => number;
}

/** Thrown when the lock could not be had in time: the caller is told, nothing is changed. */
export class FileLockTimeoutError extends Error {
  readonly code = 'lock_timeout';
  constructor(
    readonly lockFile: string,
    holder: string,
  ) {
    super(`${lockFile} is held by ${holder}; nothing was changed, try again`);
    this.name = 'FileLockTimeoutError';
  }
}

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly nonce: string;
}

/**
 * Runs `task` while holding an advisory lock on `file`: the file `<file>.lock`, created with
 * O_EXCL (`open(..., 'wx')`), which is atomic on local file systems and on NFSv3+. Every process
 * that changes `file` through this function takes turns, so read-change-write cycles from
 * different processes never lose each other's change.
 *
 * A lock left behind by a holder that died (SIGKILL, power loss) is broken: at once when its
 * process is gone (same host), otherwise once it is older than `staleMs`. Breaking is itself done
 * under `<file>.lock.break` (O_EXCL too), after checking the lock is still the one judged stale,
 * so two waiters cannot both break it and one of them delete a fresh lock.
 *
 * Hand-written rather than `proper-lockfile`: that package has had no release since 2021, and it
 * needs a timer refreshing the lock's mtime while held; a holder's process id answers the common
 * case (a CLI killed mid-write) at once.
 * @throws FileLockTimeoutError when the lock is not free within `timeoutMs`.
 */
export async function withFileLock<T>(file: string, task: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const lockFile = `${file}.lock`;
  const nonce = randomBytes(8).toString('hex');
  await acquire(lockFile, nonce, options);
  try {
    return await task();
  } finally {
    await release(lockFile, nonce);
  }
}

async function acquire(lockFile: string, nonce: string, options: FileLockOptions): Promise<void> {
  const clock = options.clock ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const staleMs = options.staleMs ?? 30_000;
  const deadline = clock() + timeoutMs;
  const content = `${JSON.stringify({ pid: process.pid, host: os.hostname(), nonce } satisfies Holder)}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lockFile, 'wx', 0o600);
      try {
        await handle.writeFile(content);
      } finally {
        await handle.close();
      }
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await mkdir(path.dirname(lockFile), { recursive: true, mode: 0o700 });
        continue;
      }
      if (code !== 'EEXIST') throw error;
    }
    const seen = await inspect(lockFile);
    if (seen === undefined) continue; // released meanwhile
    if (isStale(seen, clock(), staleMs)) {
      await breakStale(lockFile, seen, clock, staleMs);
      continue;
    }
    if (clock() >= deadline) throw new FileLockTimeoutError(lockFile, describeHolder(seen.holder));
    // Short, growing, jittered waits: holders keep the lock for milliseconds.
    await sleep(Math.min(100, 2 + attempt * 2) * (0.5 + Math.random()));
  }
}

interface Seen {
  readonly text: string;
  readonly holder: Holder | undefined;
  readonly ino: number;
  readonly mtimeMs: number;
}

async function inspect(lockFile: string): Promise<Seen | undefined> {
  try {
    const [stats, text] = await Promise.all([stat(lockFile), readFile(lockFile, 'utf8')]);
    return { text, holder: parseHolder(text), ino: stats.ino, mtimeMs: stats.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (Number.isSafeInteger(value.pid) && typeof value.host === 'string' && typeof value.nonce === 'string') return value as Holder;
  } catch {
    // Empty (its holder is between create and write) or damaged: judged by age alone.
  }
  return undefined;
}

function isStale(seen: Seen, now: number, staleMs: number): boolean {
  if (now - seen.mtimeMs > staleMs) return true;
  const holder = seen.holder;
  return holder !== undefined && holder.host === os.hostname() && !processAlive(holder.pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function breakStale(lockFile: string, seen: Seen, clock: () => number, staleMs: number): Promise<void> {
  const breakFile = `${lockFile}.break`;
  let handle;
  try {
    handle = await open(breakFile, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Another waiter is breaking it; a break file left by a breaker that died is removed by age.
    const stats = await stat(breakFile).catch(() => undefined);
    if (stats !== undefined && clock() - stats.mtimeMs > staleMs) await unlink(breakFile).catch(() => undefined);
    await sleep(5);
    return;
  }
  try {
    await handle.close();
    const now = await inspect(lockFile);
    if (now !== undefined && now.ino === seen.ino && now.text === seen.text) await unlink(lockFile).catch(() => undefined);
  } finally {
    await unlink(breakFile).catch(() => undefined);
  }
}

async function release(lockFile: string, nonce: string): Promise<void> {
  // Only our own lock: had it been broken as stale, the file may now be someone else's.
  const seen = await inspect(lockFile).catch(() => undefined);
  if (seen?.holder?.nonce === nonce) await unlink(lockFile).catch(() => undefined);
}

function describeHolder(holder: Holder | undefined): string {
  if (holder === undefined) return 'another process';
  return holder.host === os.hostname() ? `process ${holder.pid}` : `process ${holder.pid} on ${holder.host}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
