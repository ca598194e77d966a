import { pino, type DestinationStream, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

/** How log lines are written: JSON objects (log collectors, tests), or readable lines for a terminal. */
export type LogFormat = 'json' | 'pretty';

/**
 * The server's logger, on stdout. Request logging never passes headers or bodies (see
 * `request-log.ts`); the redaction list is a second line of defence should an object with such
 * fields be logged. `pretty` goes through pino-pretty (synchronously, so nothing is lost at exit)
 * and is for people at a terminal; anything that parses the log reads `json`.
 */
export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  const options = {
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        'headers.cookie',
        '*.password',
        '*.access_token',
        '*.refresh_token',
        '*.client_secret',
        'token',
      ],
      censor: '[redacted]',
    },
  };
  if (format === 'pretty') {
    const pretty = PinoPretty({
      sync: true,
      translateTime: 'SYS:HH:MM:ss',
      ignore: 'pid,hostname',
      ...(destination === undefined ? {} : { destination }),
    });
    return pino(options, pretty);
  }
  return pino(options, destination ?? bufferedStdout());
}

/** Log lines gathered before one write to stdout (pino's sonic-boom `minLength`)... */
const LOG_BATCH_BYTES = 4096;
/** ... and the longest a line waits for them when the server is quiet. */
const LOG_FLUSH_INTERVAL_MS = 200;

/**
 * stdout, written asynchronously in batches (issue 12): one line per request at thousands of
 * connects a second was one `write(2)` each, some 30 µs of the server's CPU per connect into a
 * pipe. Now lines leave together, at the latest after `LOG_FLUSH_INTERVAL_MS`, and the event loop
 * never waits for a slow reader. pino flushes what is left synchronously when the process exits
 * (also by `process.exit` or an uncaught exception); a SIGKILL loses at most the last batch.
 */
function bufferedStdout(): DestinationStream {
  const stdout = pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES });
  setInterval(() => stdout.flush(), LOG_FLUSH_INTERVAL_MS).unref();
  return stdout;
}

/** `LOG_FORMAT=auto`: readable on a terminal, JSON otherwise (a pipe, a file, journald, a container log). */
export function resolveLogFormat(setting: 'auto' | LogFormat, stdoutIsTerminal: boolean): LogFormat {
  return setting === 'auto' ? (stdoutIsTerminal ? 'pretty' : 'json') : setting;
}
