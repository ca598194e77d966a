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
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** `LOG_FORMAT=auto`: readable on a terminal, JSON otherwise (a pipe, a file, journald, a container log). */
export function resolveLogFormat(setting: 'auto' | LogFormat, stdoutIsTerminal: boolean): LogFormat {
  return setting === 'auto' ? (stdoutIsTerminal ? 'pretty' : 'json') : setting;
}
