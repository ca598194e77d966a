import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Replaces `file` with `contents` so that a crash at any moment leaves either the old file or the
 * new one, never a mix: write a temporary file in the same directory (a rename is atomic only
 * within one file system), fsync it, rename it over the target (atomic on POSIX), then fsync the
 * directory so the rename itself survives a power loss. The file gets `mode` (default 0600)
 * whatever the umask; a missing directory is created with 0700. On failure the temporary file is
 * removed and the target is untouched.
 * @returns the new file's stats, read before the rename (a rename keeps inode, size and mtime).
 */
export async function writeFileAtomic(file: string, contents: string | Uint8Array, mode = 0o600): Promise<Stats> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // The pid keeps two processes apart even if their random parts met; `wx` refuses to reuse a name anyway.
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let stats: Stats;
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.chmod(mode); // open's mode is filtered by the umask; make sure of it
      await handle.writeFile(contents);
      await handle.sync();
      stats = await handle.stat();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
  return stats;
}

/** Makes a rename durable (POSIX: the directory entry lives in the directory). */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Windows cannot open or fsync a directory; the rename is as durable as it gets there.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw error;
  } finally {
    await handle?.close();
  }
}
