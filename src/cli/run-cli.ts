import { AppError } from '../errors.js';
import {
  CliError,
  PROGRAM,
  table,
  UsageError,
  type AccountServices,
  type CliCommand,
  type CliStreams,
  type ServiceOptions,
} from './command.js';
import { clientsCommand } from './clients-command.js';
import { configCommand } from './config-command.js';
import { publishCommand, tailCommand, tokenCommand } from './remote-commands.js';
import { serveCommand } from './serve-command.js';
import { usersCommand } from './users-command.js';

/**
 * The command table of `notify`. To add a command (say `notify keys`), write a
 * `CliCommand` (plain, or built with `commandGroup`) in its own file and list it here; or pass an
 * extended list to `runCli`.
 */
export function builtinCommands(): CliCommand[] {
  return [serveCommand, configCommand, usersCommand, clientsCommand, publishCommand, tailCommand, tokenCommand];
}

/** What `runCli` needs from its caller: the streams and a way to open the services. */
export interface CliEnvironment extends CliStreams {
  /**
   * Loads the configuration and opens the store; called at most once, and only by a command that
   * needs it. `runCli` calls `close()` on the result when the command ends.
   */
  openServices(options: ServiceOptions): AccountServices | Promise<AccountServices>;
  /** Starts the server in this process (`notify serve`); absent where the CLI cannot serve (tests). */
  serve?(options: ServiceOptions): Promise<void>;
  /** Environment variables for the commands that talk to a server; default none. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Reads a file as UTF-8 (`notify config check`); default: none can be read. */
  readonly readFile?: (file: string) => string;
}

/**
 * Runs one `notify` command line and returns the exit code: 0 on success, 1 on a runtime failure
 * (the account exists, the store is corrupt, ...), 2 on a usage error (unknown command, bad or
 * missing arguments). Error messages go to stderr; nothing is thrown.
 * @param argv the arguments after the program name (`process.argv.slice(2)`).
 * @param commands the command table; default `builtinCommands()`.
 */
export async function runCli(
  argv: readonly string[],
  environment: CliEnvironment,
  commands: readonly CliCommand[] = builtinCommands(),
): Promise<number> {
  const { stdin, stdout, stderr } = environment;
  let opened: Promise<AccountServices> | undefined;
  const context = {
    stdin,
    stdout,
    stderr,
    env: environment.env ?? {},
    readFile:
      environment.readFile ??
      ((file: string): string => {
        throw new Error(`cannot read ${file}`);
      }),
    services: (options: ServiceOptions = {}) => (opened ??= Promise.resolve().then(() => environment.openServices(options))),
    ...(environment.serve === undefined ? {} : { serve: environment.serve.bind(environment) }),
  };
  try {
    const [name, ...rest] = argv;
    if (name === '--help' || name === '-h' || name === 'help') {
      stdout.write(programHelp(commands));
      return 0;
    }
    if (name === undefined) throw new UsageError('a command is required');
    const command = commands.find((candidate) => candidate.name === name);
    if (command === undefined) throw new UsageError(`unknown command '${name}'`);
    return (await command.run(rest, context)) ?? 0;
  } catch (error) {
    return report(error, stderr);
  } finally {
    if (opened !== undefined) {
      try {
        await (await opened).close?.();
      } catch {
        // The services never opened (the error was reported above) or closing failed after the
        // command's own outcome was decided; neither changes the exit code.
      }
    }
  }
}

function report(error: unknown, stderr: NodeJS.WritableStream): number {
  if (error instanceof UsageError) {
    stderr.write(`${PROGRAM}: ${error.message}\nRun '${error.command} --help' for usage.\n`);
    return 2;
  }
  if (error instanceof CliError) {
    stderr.write(`${PROGRAM}: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof AppError || error instanceof Error) {
    // AppError messages are written for people; other errors (ConfigError, file system) too.
    stderr.write(`${PROGRAM}: ${error.message}\n`);
    return 1;
  }
  stderr.write(`${PROGRAM}: ${String(error)}\n`);
  return 1;
}

function programHelp(commands: readonly CliCommand[]): string {
  return [
    `Usage: ${PROGRAM} <command> <subcommand> [options]`,
    '',
    'Run the notification server, check its configuration, manage its accounts (reads the same',
    'configuration as the server: the environment and --config FILE or NOTIFY_CONFIG; DATA_DIR or',
    '--data-dir, USERS_FILE, SCRYPT_LOG_N, ROLES_FILE), and publish, tail and get tokens from a',
    'running one (NOTIFY_URL, NOTIFY_TOKEN, NOTIFY_CLIENT_SECRET).',
    '',
    'Commands:',
    ...table(commands.map((command) => [command.name, command.summary])),
    '',
    `Run '${PROGRAM} <command> --help' for its subcommands.`,
    '',
  ].join('\n');
}
