import { stat } from 'node:fs/promises';
import path from 'node:path';
import { FileUserStore } from '../auth/file-user-store.js';
import { ConfigError, inspectConfig } from '../config.js';
import { prepareDataDir } from '../fs/data-dir.js';
import { CliError, type AccountServices, type ServiceOptions } from './command.js';

/** What opening the account services reads from the process; the entry point passes its own. */
export interface AccountServicesEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where the operator gets told which user file is used. */
  readonly stderr: NodeJS.WritableStream;
  /** Reads the configuration file and ROLES_FILE. */
  readonly readFile: (file: string) => string;
}

/**
 * Loads the configuration as the server does (with `--data-dir` in place of `DATA_DIR`), opens
 * the user file and says on stderr which one it is: a CLI run from another directory than the
 * server's would otherwise write accounts to a `./data` the server never reads.
 *
 * A data directory that does not exist is created (on the first write) only when it was named:
 * `--data-dir`, `DATA_DIR` or `USERS_FILE`. The default, `./data` of the current directory, must
 * exist already.
 * @throws CliError when the default data directory does not exist, or the path is not a directory.
 */
export async function openAccountServices(environment: AccountServicesEnvironment, options: ServiceOptions): Promise<AccountServices> {
  const env = options.dataDir === undefined ? environment.env : { ...environment.env, DATA_DIR: options.dataDir };
  const report = inspectConfig({
    env,
    readFile: environment.readFile,
    ...(options.configFile === undefined ? {} : { file: options.configFile }),
  });
  const config = report.config;
  if (config === undefined) {
    const [first] = report.problems;
    throw new ConfigError(first!.key, first!.message, first!.file, report.problems);
  }
  const file = config.usersFile;
  const dir = path.dirname(file);
  // Named in the environment, the configuration file or on the command line (`--data-dir` is DATA_DIR above).
  const named = report.given.DATA_DIR !== undefined || report.given.USERS_FILE !== undefined;
  const dirKind = await kindOf(dir);
  if (dirKind === 'file' || dirKind === 'other') throw new CliError(`${dir} is not a directory (the user file ${file} would be in it)`);
  if (dirKind === 'missing' && !named) {
    throw new CliError(
      `there is no data directory at ${dir}: DATA_DIR defaults to ./data in the current directory. ` +
        "Run from the server's directory, or name its data directory with --data-dir DIR (or DATA_DIR); " +
        'a new one is created only when it is named.',
    );
  }
  // Created now, one level at a time, so a path that cannot be a directory (`/proc/x`) is an error, not a hang.
  if (dirKind === 'missing') await prepareDataDir(dir, options.dataDir === undefined ? 'DATA_DIR' : '--data-dir');
  const fileKind = dirKind === 'missing' ? 'missing' : await kindOf(file);
  const note = dirKind === 'missing' ? ` (new, in a new data directory ${dir})` : fileKind === 'missing' ? ' (new)' : '';
  environment.stderr.write(`notify: user file ${file}${note}\n`);
  const store = new FileUserStore({ file });
  return {
    store,
    scryptLogN: config.scryptLogN,
    knownRoles: Object.keys(config.roles),
    close: () => store.close(),
  };
}

async function kindOf(file: string): Promise<'directory' | 'file' | 'missing' | 'other'> {
  try {
    const stats = await stat(file);
    return stats.isDirectory() ? 'directory' : stats.isFile() ? 'file' : 'other';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
}
