import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * JSON logs on stdout. Request logging never passes headers or bodies (see `request-log.ts`);
 * the redaction list is a second line of defence should an object with such fields be logged.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
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
  return destination === undefined ? pino(options) : pino(options, destination);
}
