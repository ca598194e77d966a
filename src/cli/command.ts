import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { UserStore } from '../auth/user-store.js';

/** The program name used in usage lines. */
export const PROGRAM = 'notify';

/** The three standard streams; fakes in tests. */
export interface CliStreams {
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** What the account commands need besides the streams; built from the configuration. */
export interface AccountServices {
  readonly store: UserStore;
  /** scrypt cost (log2 N) for new password and secret hashes: `config.scryptLogN`. */
  readonly scryptLogN: number;
  /** Role names in the server's role table; granting another one prints a warning. */
  readonly knownRoles: readonly string[];
  /** Randomness for client secrets; default `crypto.randomBytes`. */
  readonly randomBytes?: (size: number) => Buffer;
  /** Releases the services when the command is done (closes the store). */
  close?(): Promise<void>;
}

/** The argument of the account command functions (`addUser`, `addClient`, ...). */
export type AccountContext = CliStreams & AccountServices;

/** How a command asks for the account services. */
export interface ServiceOptions {
  /** `--data-dir`: the server's data directory, instead of `DATA_DIR` (default `./data`). */
  readonly dataDir?: string;
  /** `--config`: the server's configuration file, instead of `NOTIFY_CONFIG`. */
  readonly configFile?: string;
}

/** What `runCli` hands a command. */
export interface CliContext extends CliStreams {
  /**
   * Opens the configuration-dependent services on first call (and returns the same ones after),
   * so `--help` and argument errors work even when the environment is not configured.
   */
  services(options?: ServiceOptions): Promise<AccountServices>;
  /** Runs the server in this process (`notify serve`); provided by the entry point. */
  serve?(options: ServiceOptions): Promise<void>;
  /** The environment, for commands that talk to a running server (NOTIFY_URL, NOTIFY_TOKEN, ...). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads a file as UTF-8 (the configuration file and the files it names), for `notify config`. */
  readonly readFile: (file: string) => string;
}

/** A top-level command (`users`, `clients`, ...); see `builtinCommands` in `run-cli.ts`. */
export interface CliCommand {
  readonly name: string;
  /** One line for `notify --help`. */
  readonly summary: string;
  /**
   * Runs the command with the arguments after its name.
   * @returns the exit code, 0 when omitted.
   * @throws UsageError for bad arguments (exit 2); any other error is a runtime failure (exit 1).
   */
  run(argv: readonly string[], context: CliContext): Promise<number | void>;
}

/** Bad command-line arguments: the message and a pointer to `--help` go to stderr, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command line whose `--help` explains the usage, e.g. `notify users add`. */
    readonly command: string = PROGRAM,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A runtime failure with a message meant for the operator and a chosen exit code (default 1). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** `parseArgs` option definitions. */
type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** Values parsed by `parseArgs`, loosely typed: read them with `stringList` and `flag`. */
export type ParsedValues = Readonly<Record<string, string | boolean | Array<string | boolean> | undefined>>;

/** One subcommand of a command group (`notify users add`). */
export interface Subcommand {
  readonly name: string;
  /** One line for the group's help. */
  readonly summary: string;
  /** What follows the subcommand in the usage line, e.g. `<name> [--role ROLE ...]`. */
  readonly synopsis: string;
  /** Paragraphs shown by `--help`. */
  readonly description?: string;
  /** `parseArgs` options; `--help`/`-h` is added to every subcommand. */
  readonly options?: ParseArgsOptionsConfig;
  /** `--help` lines for the options: [flags, text]. */
  readonly optionHelp?: ReadonlyArray<readonly [string, string]>;
  /** How many positional arguments are allowed. */
  readonly positionals: { readonly min: number; readonly max: number };
  run(args: { values: ParsedValues; positionals: string[] }, context: CliContext): Promise<number | void>;
}

/**
 * Builds a command made of subcommands (`notify users add|remove|...`), with `--help` at every
 * level and strict argument checking: an unknown option, a missing or extra argument is a
 * `UsageError`.
 */
export function commandGroup(name: string, summary: string, subcommands: readonly Subcommand[]): CliCommand {
  const command = `${PROGRAM} ${name}`;
  const groupHelp = [
    `Usage: ${command} <command> [options]`,
    '',
    summary,
    '',
    'Commands:',
    ...table(subcommands.map((sub) => [sub.name, sub.summary])),
    '',
    `Run '${command} <command> --help' for the options of a command.`,
    '',
  ].join('\n');

  return {
    name,
    summary,
    async run(argv, context) {
      const [first, ...rest] = argv;
      if (first === '--help' || first === '-h' || first === 'help') {
        context.stdout.write(groupHelp);
        return 0;
      }
      if (first === undefined) throw new UsageError('a command is required', command);
      const sub = subcommands.find((candidate) => candidate.name === first);
      if (sub === undefined) throw new UsageError(`unknown command '${first}'`, command);
      return runSubcommand(`${command} ${sub.name}`, sub, rest, context);
    },
  };
}

/**
 * Parses `argv` for one (sub)command and runs it: `--help`, strict options and the positional
 * count are handled here, the same for every command.
 * @param commandLine the command as typed, e.g. `notify users add`, for help and usage errors.
 */
async function runSubcommand(commandLine: string, sub: Subcommand, argv: readonly string[], context: CliContext): Promise<number | void> {
  let parsed: { values: ParsedValues; positionals: string[] };
  try {
    const result = parseArgs({
      args: [...argv],
      options: { ...sub.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    parsed = { values: result.values, positionals: result.positionals };
  } catch (error) {
    // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes and readable messages.
    throw new UsageError((error as Error).message, commandLine);
  }
  if (parsed.values.help === true) {
    context.stdout.write(subcommandHelp(commandLine, sub));
    return 0;
  }
  const count = parsed.positionals.length;
  if (count < sub.positionals.min) throw new UsageError('missing arguments', commandLine);
  // The extra argument is not echoed: it may be a password typed where it does not belong.
  if (count > sub.positionals.max) throw new UsageError('too many arguments', commandLine);
  return sub.run(parsed, context);
}

/** A top-level command without subcommands (`notify publish ...`), with the same `--help` and checks. */
export function singleCommand(sub: Subcommand): CliCommand {
  return {
    name: sub.name,
    summary: sub.summary,
    run: (argv, context) => runSubcommand(`${PROGRAM} ${sub.name}`, sub, argv, context),
  };
}

function subcommandHelp(command: string, sub: Subcommand): string {
  const options = [...(sub.optionHelp ?? []), ['-h, --help', 'show this help'] as const];
  return [
    `Usage: ${command}${sub.synopsis === '' ? '' : ` ${sub.synopsis}`}`,
    '',
    sub.summary,
    ...(sub.description === undefined ? [] : ['', sub.description]),
    '',
    'Options:',
    ...table(options),
    '',
  ].join('\n');
}

/** Two aligned columns, indented by two spaces. */
export function table(rows: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`.trimEnd());
}

/** A repeatable string option as an array (empty when absent). */
export function stringList(value: ParsedValues[string]): string[] {
  if (value === undefined) return [];
  const values = Array.isArray(value) ? value : [value];
  return values.filter((item): item is string => typeof item === 'string');
}

/** A boolean option. */
export function flag(value: ParsedValues[string]): boolean {
  return value === true;
}
