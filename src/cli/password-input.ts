import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { CliError, type CliStreams } from './command.js';

/**
 * How much of a piped stdin is read while looking for the first line. Passwords are at most 1024
 * bytes (`password.ts`); the margin lets that check, not this one, report a long password.
 */
const MAX_STDIN_LINE_BYTES = 64 * 1024;

/**
 * Reads a new password without it ever being on the command line (where `ps` and shell history
 * would show it): from the first line of stdin when stdin is not a terminal (scripts:
 * `printf '%s\n' "$PW" | notify users add alice`), else by prompting twice on the terminal with
 * echo off. Prompts go to stderr, so stdout stays clean for output.
 * @throws CliError when stdin is empty, the prompted passwords differ, or the prompt is cancelled.
 */
export async function readNewPassword(io: CliStreams): Promise<string> {
  if (io.stdin.isTTY === true) {
    const [first, second] = await promptHidden(io, ['New password: ', 'Repeat the password: ']);
    if (first !== second) throw new CliError('the passwords do not match');
    return first!;
  }
  const line = await readFirstLine(io.stdin);
  if (line === undefined) throw new CliError('no password on standard input');
  return line;
}

/** The first line of `input`, without its line ending; undefined when the input is empty. */
export async function readFirstLine(input: NodeJS.ReadableStream): Promise<string | undefined> {
  const decoder = new StringDecoder('utf8');
  let text = '';
  let bytes = 0;
  let sawData = false;
  // Leaving the loop early destroys the stream: nothing after the first line is consumed.
  for await (const chunk of input) {
    sawData = true;
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    text += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    const end = text.indexOf('\n');
    if (end >= 0) return stripCr(text.slice(0, end));
    if (bytes > MAX_STDIN_LINE_BYTES) throw new CliError('the password line on standard input is too long');
  }
  text += decoder.end();
  return sawData ? stripCr(text) : undefined;
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/**
 * Asks each question on stderr and reads one line per question from the terminal with echo off:
 * readline's own echo goes to a sink. One readline interface serves all questions, so lines that
 * arrive together are not lost between them.
 */
async function promptHidden(io: CliStreams, questions: readonly string[]): Promise<string[]> {
  const sink = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  const rl = createInterface({ input: io.stdin, output: sink, terminal: true });
  const lines: string[] = [];
  let waiting: { resolve: (line: string) => void; reject: (error: Error) => void } | undefined;
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    waiting?.reject(failure);
    waiting = undefined;
  };
  rl.on('line', (line) => {
    if (waiting === undefined) {
      lines.push(line);
    } else {
      waiting.resolve(line);
      waiting = undefined;
    }
  });
  // In raw mode Ctrl-C reaches readline as a key, not as a signal.
  rl.on('SIGINT', () => fail(new CliError('cancelled', 130)));
  rl.on('close', () => fail(new CliError('no password entered')));
  const next = (): Promise<string> => {
    const line = lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise((resolve, reject) => {
      waiting = { resolve, reject };
    });
  };
  const answers: string[] = [];
  try {
    for (const question of questions) {
      io.stderr.write(question);
      try {
        answers.push(await next());
      } finally {
        io.stderr.write('\n');
      }
    }
  } finally {
    rl.close();
  }
  return answers;
}
