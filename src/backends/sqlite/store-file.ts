import { closeSync, existsSync, lstatSync, openSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../../config.js';
import { APPLICATION_ID, SCHEMA_SQL, SCHEMA_VERSION } from './schema.js';

/** The store file, checked and open for reading in the server's thread. */
export interface StoreFile {
  readonly file: string;
  /** A connection that only reads (`query_only`): replay and what is loaded at start. WAL readers never wait for the writer. */
  readonly reader: Database.Database;
  /** True when the file did not exist and was created now. */
  readonly created: boolean;
  /** Releases the reader and the one-process lock. */
  close(): void;
}

/**
 * Opens the store file, or creates it when there is none, and checks it before anything is read
 * from it: a file that is damaged (`PRAGMA quick_check`), is not a database, is someone else's
 * database, has no schema (an empty file counts: it existed, so it held a store once), or comes
 * from a newer release stops the server at start with exit code 78 and a message naming the file.
 * The server never silently starts with an empty store in place of one it could not read.
 *
 * A new file is built under a temporary name and renamed into place once its schema is committed,
 * so a crash during the very first start leaves no half-made file that the next start would refuse.
 *
 * One process at a time: the store's ids are issued by its one writer, so a second server on the
 * same `DATA_DIR` is refused (`<file>.lock`, held with SQLite's exclusive locking until close or
 * death of the process, which the OS releases even after `kill -9`).
 * @param now the creation time of a new store: ids from before it are from an earlier store (`reset`).
 * @throws ConfigError (`DATA_DIR`) naming the file and what is wrong with it.
 */
export function openStoreFile(file: string, now: number): StoreFile {
  const fail = (problem: string, cause?: unknown, hint = ''): never => {
    const detail = cause === undefined ? '' : ` (${describe(cause)})`;
    throw new ConfigError('DATA_DIR', `${file} ${problem}${detail}${hint}`);
  };
  const unusable = `; move it aside with ${path.basename(file)}-wal and ${path.basename(file)}-shm to start with an empty store, or restore it from a backup`;
  /** A read that failed: damaged, not a database at all, or not readable. */
  const unreadable = (error: unknown): never => {
    const code = (error as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_CORRUPT')) return fail('is damaged', error, unusable);
    if (code === 'SQLITE_NOTADB') return fail('is not a SQLite database', error, unusable);
    return fail('cannot be read', error);
  };

  const lock = holdLock(`${file}.lock`, fail);
  let reader: Database.Database | undefined;
  try {
    let created = false;
    const kind = kindOf(file, fail);
    if (kind === 'other') fail('is not a regular file');
    if (kind === 'missing') {
      // A -wal without its database holds the last writes of a store that was moved or deleted; a
      // new file would take them in as its own (SQLite replays the WAL it finds beside a file).
      // Refused rather than moved aside: putting the database back next to it loses nothing.
      for (const leftover of [`${file}-wal`, `${file}-shm`]) {
        if (existsSync(leftover)) {
          fail(
            `is missing, but ${leftover} is there: it belongs to a store that was moved or deleted`,
            undefined,
            `; put ${path.basename(file)} back beside it, or move ${path.basename(file)}-wal and ${path.basename(file)}-shm aside too to start with an empty store`,
          );
        }
      }
      createStore(file, now, fail);
      created = true;
    }
    try {
      reader = new Database(file, { fileMustExist: true });
    } catch (error) {
      return fail('cannot be opened', error);
    }
    const db = reader;
    let applicationId: number;
    let version: number;
    try {
      applicationId = db.pragma('application_id', { simple: true }) as number;
      version = db.pragma('user_version', { simple: true }) as number;
    } catch (error) {
      return unreadable(error);
    }
    if (applicationId !== APPLICATION_ID) {
      const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number };
      fail(
        applicationId === 0 && tables.n === 0
          ? 'holds no notify store (it is empty or has no schema)'
          : `is not a notify store (application_id ${applicationId})`,
        undefined,
        unusable,
      );
    }
    if (version > SCHEMA_VERSION) {
      fail(`was written by a newer release of notify (schema ${version}; this release reads schema ${SCHEMA_VERSION} and older)`);
    }
    try {
      const problems = (db.pragma('quick_check') as Array<{ quick_check: string }>).map((row) => row.quick_check);
      if (problems.length !== 1 || problems[0] !== 'ok') fail(`is damaged (${problems.slice(0, 3).join('; ')})`, undefined, unusable);
      const unlike = differencesFromSchema(db);
      if (unlike.length > 0) fail(`is damaged (${unlike.slice(0, 3).join('; ')})`, undefined, unusable);
      if ((db.prepare('SELECT count(*) AS n FROM state').get() as { n: number }).n !== 1)
        fail('is damaged (no state row)', undefined, unusable);
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      return unreadable(error);
    }
    try {
      db.pragma('journal_mode = WAL');
    } catch (error) {
      fail('cannot be written', error);
    }
    db.pragma('query_only = ON');
    return {
      file,
      reader: db,
      created,
      close() {
        if (db.open) db.close();
        if (lock.open) lock.close();
      },
    };
  } catch (error) {
    if (reader?.open) reader.close();
    lock.close();
    throw error;
  }
}

/**
 * The lock: an exclusive SQLite lock on `<file>.lock`, kept by the connection until it closes
 * (exclusive locking mode never releases a lock it took). No journal: the file holds nothing.
 */
function holdLock(lockFile: string, fail: (problem: string, cause?: unknown, hint?: string) => never): Database.Database {
  let lock: Database.Database;
  try {
    createPrivate(lockFile);
    lock = new Database(lockFile, { timeout: 0 });
  } catch (error) {
    return fail(`cannot be locked: ${lockFile} cannot be opened`, error);
  }
  try {
    lock.pragma('journal_mode = OFF');
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held_by (pid INTEGER); DELETE FROM held_by');
    lock.prepare('INSERT INTO held_by (pid) VALUES (?)').run(process.pid);
    lock.exec('COMMIT');
    return lock;
  } catch (error) {
    lock.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') {
      return fail('is in use by another notify process (give each server its own DATA_DIR; several instances need STORE=redis)');
    }
    return fail(`cannot be locked: ${lockFile} cannot be used`, error);
  }
}

/** Table name -> its column names, and the index names, of a database (SQLite's own objects aside). */
function shapeOf(db: Database.Database): { tables: Map<string, string[]>; indexes: Set<string> } {
  const objects = db
    .prepare("SELECT type, name FROM sqlite_schema WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'")
    .all() as Array<{
    type: string;
    name: string;
  }>;
  const tables = new Map<string, string[]>();
  const indexes = new Set<string>();
  for (const { type, name } of objects) {
    if (type === 'index') indexes.add(name);
    else
      tables.set(
        name,
        (db.pragma(`table_info(${JSON.stringify(name)})`) as Array<{ name: string }>).map((column) => column.name),
      );
  }
  return { tables, indexes };
}

let expectedShape: ReturnType<typeof shapeOf> | undefined;

/**
 * What a store with our `application_id` and schema version lacks of the schema this release
 * reads and writes (a table, a column, an index): its statements would fail on first use, so it
 * is refused at start. The expected shape is the schema itself, built once in memory.
 */
function differencesFromSchema(db: Database.Database): string[] {
  if (expectedShape === undefined) {
    const model = new Database(':memory:');
    model.exec(SCHEMA_SQL);
    expectedShape = shapeOf(model);
    model.close();
  }
  const found = shapeOf(db);
  const differences: string[] = [];
  for (const [table, columns] of expectedShape.tables) {
    const present = found.tables.get(table);
    if (present === undefined) differences.push(`missing table ${table}`);
    else for (const column of columns.filter((name) => !present.includes(name))) differences.push(`missing column ${table}.${column}`);
  }
  for (const index of expectedShape.indexes) if (!found.indexes.has(index)) differences.push(`missing index ${index}`);
  return differences;
}

/** Builds a new store under a temporary name, then renames it into place. */
function createStore(file: string, now: number, fail: (problem: string, cause?: unknown) => never): void {
  const temporary = `${file}.new`;
  try {
    for (const leftover of [temporary, `${temporary}-wal`, `${temporary}-shm`, `${temporary}-journal`]) rmSync(leftover, { force: true });
    // 0600 before the first byte, as every file in DATA_DIR: SQLite gives the WAL the file's mode.
    createPrivate(temporary);
    const db = new Database(temporary);
    try {
      // Before the first table: deleted rows' pages can be given back to the file system.
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('journal_mode = WAL');
      db.transaction(() => {
        db.pragma(`application_id = ${APPLICATION_ID}`);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
        db.exec(SCHEMA_SQL);
        db.prepare('INSERT INTO state (only, created_ms, last_ms, last_seq, last_n) VALUES (1, ?, ?, 0, 0)').run(
          Math.floor(now),
          Math.floor(now),
        );
      })();
    } finally {
      db.close(); // checkpoints the WAL into the file and removes it
    }
    renameSync(temporary, file);
  } catch (error) {
    fail('cannot be created', error);
  }
}

/** Creates `file` empty with mode 0600 unless it exists. */
function createPrivate(file: string): void {
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

function kindOf(file: string, fail: (problem: string, cause?: unknown) => never): 'file' | 'missing' | 'other' {
  try {
    return lstatSync(file).isFile() ? 'file' : 'other';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    return fail('cannot be checked', error);
  }
}

/** `SQLITE_CORRUPT: database disk image is malformed`. */
function describe(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  return code === undefined ? String(message ?? error) : `${code}: ${message ?? ''}`;
}
