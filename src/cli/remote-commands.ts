import { NotifyClient } from '../client/notify-client.js';
import { NetworkError, NotifyClientError } from '../client/errors.js';
import { requestToken, type TokenResponse } from '../client/token-request.js';
import type { EventSourceConstructor, NotifyEvent } from '../client/types.js';
import { CliError, commandGroup, flag, singleCommand, stringList, UsageError, type CliContext, type ParsedValues } from './command.js';
import { AllEventsSource } from './all-events-source.js';
import { readFirstLine } from './password-input.js';

/** Exit code when the server refuses the credentials or the grants (401, 403, a refused refresh). */
const EXIT_REFUSED = 3;
const DEFAULT_URL = 'http://127.0.0.1:3000';

const URL_OPTION = { url: { type: 'string' } } as const;
const CLIENT_OPTION = { client: { type: 'string', short: 'c' } } as const;
const URL_HELP = ['--url URL', `the server (default: $NOTIFY_URL or ${DEFAULT_URL})`] as const;
const CLIENT_HELP = [
  '-c, --client NAME',
  'authenticate as this service client; its secret comes from $NOTIFY_CLIENT_SECRET or the first line of stdin',
] as const;
const AUTH_TEXT =
  'Credentials: --client NAME (client_credentials grant; the secret from $NOTIFY_CLIENT_SECRET or stdin, never from the command line), or an access token in $NOTIFY_TOKEN. Exit codes: 0 done, 1 failure (network, server), 2 usage, 3 refused by the server (401/403).';

function serverUrl(values: ParsedValues, context: CliContext): string {
  const url = typeof values.url === 'string' ? values.url : (context.env.NOTIFY_URL ?? DEFAULT_URL);
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new UsageError(`--url must be an http(s) URL, got "${url}"`);
  }
  return url;
}

async function clientSecret(context: CliContext, name: string): Promise<string> {
  const fromEnv = context.env.NOTIFY_CLIENT_SECRET;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (context.stdin.isTTY === true) throw new CliError(`no secret for client "${name}": set NOTIFY_CLIENT_SECRET or pipe it on stdin`);
  const line = await readFirstLine(context.stdin);
  if (line === undefined || line === '') throw new CliError(`no secret for client "${name}" on standard input`);
  return line;
}

/** A client for the server with the credentials the command line and environment give. */
async function remoteClient(values: ParsedValues, context: CliContext, commandLine: string): Promise<NotifyClient> {
  const baseUrl = serverUrl(values, context);
  // AllEventsSource: `tail` prints every event type, not only the ones it could name in advance.
  const common = { baseUrl, mode: 'bearer' as const, EventSource: AllEventsSource as unknown as EventSourceConstructor };
  if (typeof values.client === 'string') {
    const client = new NotifyClient({
      ...common,
      clientCredentials: { id: values.client, secret: await clientSecret(context, values.client) },
    });
    await client.refresh();
    return client;
  }
  const token = context.env.NOTIFY_TOKEN;
  if (token === undefined || token === '') {
    throw new UsageError('no credentials: give --client NAME, or set NOTIFY_TOKEN', commandLine);
  }
  return new NotifyClient({ ...common, accessToken: token });
}

/** Server refusals become exit code 3, other client errors 1, with the server's own words. */
function asCliError(error: unknown): Error {
  if (!(error instanceof NotifyClientError)) return error instanceof Error ? error : new Error(String(error));
  const refused =
    error.status === 401 || error.status === 403 || ['signed_out', 'unauthorized', 'forbidden', 'insufficient_scope'].includes(error.code);
  return new CliError(`${error.code}: ${error.message}`, refused ? EXIT_REFUSED : 1);
}

async function remote<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw asCliError(error);
  }
}

/** `notify publish <topic>... --data JSON` */
export const publishCommand = singleCommand({
  name: 'publish',
  summary: 'Publish an event to topics on a running server.',
  synopsis: '<topic> [<topic> ...] [--data JSON] [--type TYPE] [--key KEY] [--client NAME] [--url URL] [--json]',
  description: `The event's data is --data, or else standard input, as JSON. A failed attempt is retried with the same idempotency key (--key, or a random one), so the event is published once. ${AUTH_TEXT}`,
  options: {
    data: { type: 'string', short: 'd' },
    type: { type: 'string', short: 't' },
    key: { type: 'string' },
    json: { type: 'boolean' },
    ...URL_OPTION,
    ...CLIENT_OPTION,
  },
  optionHelp: [
    ['-d, --data JSON', 'the event data (default: read from stdin)'],
    ['-t, --type TYPE', 'the event type (default: message)'],
    ['--key KEY', 'idempotency key: publishing again with it is answered with the original event'],
    ['--json', 'print the answer as JSON'],
    CLIENT_HELP,
    URL_HELP,
  ],
  positionals: { min: 1, max: 16 },
  async run({ values, positionals }, context) {
    const commandLine = 'notify publish';
    let text = typeof values.data === 'string' ? values.data : undefined;
    if (text === undefined) {
      if (typeof values.client === 'string' && !context.env.NOTIFY_CLIENT_SECRET) {
        throw new UsageError('with --client and no NOTIFY_CLIENT_SECRET, stdin holds the secret: give the data with --data', commandLine);
      }
      if (context.stdin.isTTY === true) throw new UsageError('give the data with --data, or on standard input', commandLine);
      text = await readAll(context.stdin);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new UsageError('the data is not valid JSON (a string needs quotes: --data \'"hello"\')', commandLine);
    }
    const client = await remote(() => remoteClient(values, context, commandLine));
    try {
      const result = await remote(() =>
        client.publish(positionals, data, {
          ...(typeof values.type === 'string' ? { type: values.type } : {}),
          ...(typeof values.key === 'string' ? { idempotencyKey: values.key } : {}),
        }),
      );
      if (flag(values.json)) context.stdout.write(`${JSON.stringify(result)}\n`);
      else context.stdout.write(`${result.duplicate ? 'Already published' : 'Published'} ${result.id}\n`);
    } finally {
      client.close();
    }
  },
});

/** `notify tail <selector>...` */
export const tailCommand = singleCommand({
  name: 'tail',
  summary: 'Subscribe to topics and print events as they arrive.',
  synopsis: '<selector> [<selector> ...] [--type TYPE ...] [--last-event-id ID] [--count N] [--json] [--client NAME] [--url URL]',
  description: `Prints one line per event, of every type unless --type is given: "<id> <type> <data>" (or a JSON object with --json). Reconnects by itself after a drop and resumes with Last-Event-ID, so nothing is missed or printed twice; a "reset" (history could not cover a gap) is reported on stderr. Start after a known event with --last-event-id. ${AUTH_TEXT}`,
  options: {
    type: { type: 'string', short: 't', multiple: true },
    'last-event-id': { type: 'string' },
    count: { type: 'string', short: 'n' },
    json: { type: 'boolean' },
    ...URL_OPTION,
    ...CLIENT_OPTION,
  },
  optionHelp: [
    ['-t, --type TYPE', 'print only events of this type (repeatable; default: every type)'],
    ['--last-event-id ID', 'resume after this event id'],
    ['-n, --count N', 'exit after N events'],
    ['--json', 'print one JSON object per line'],
    CLIENT_HELP,
    URL_HELP,
  ],
  positionals: { min: 1, max: 16 },
  async run({ values, positionals }, context) {
    const commandLine = 'notify tail';
    let limit: number | undefined;
    if (typeof values.count === 'string') {
      limit = Number(values.count);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--count must be a positive integer', commandLine);
    }
    const client = await remote(() => remoteClient(values, context, commandLine));
    const lastEventId = values['last-event-id'];
    const types = stringList(values.type);
    let printed = 0;
    try {
      return await new Promise<number>((resolve, reject) => {
        const subscription = client.subscribe(
          positionals,
          {
            event: (event: NotifyEvent) => {
              // Events that arrived in the same chunk are still dispatched after close(): stop at the count.
              if ((limit !== undefined && printed >= limit) || (types.length > 0 && !types.includes(event.type))) return;
              context.stdout.write(
                flag(values.json) ? `${JSON.stringify(event)}\n` : `${event.id} ${event.type} ${JSON.stringify(event.data)}\n`,
              );
              if (limit !== undefined && ++printed >= limit) {
                subscription.close();
                resolve(0);
              }
            },
            reset: (info) =>
              context.stderr.write(`notify: reset (${info.reason}): events after ${info.lastEventId} are no longer available\n`),
            stop: (error) => reject(asCliError(error)),
          },
          typeof lastEventId === 'string' ? { lastEventId } : {},
        );
      });
    } finally {
      client.close();
    }
  },
});

/** `notify token get|show` */
export const tokenCommand = commandGroup('token', 'Get an access token for a service client, or show the claims of one.', [
  {
    name: 'get',
    summary: 'Get an access token with the client_credentials grant and print it.',
    synopsis: '--client NAME [--url URL] [--json]',
    description:
      'The secret comes from $NOTIFY_CLIENT_SECRET or the first line of stdin, never from the command line. Prints the token alone (for NOTIFY_TOKEN=$(...)), or the whole token response with --json. Exit 3 when the server refuses the client.',
    options: { ...CLIENT_OPTION, ...URL_OPTION, json: { type: 'boolean' } },
    optionHelp: [CLIENT_HELP, URL_HELP, ['--json', 'print {"access_token","token_type","expires_in"}']],
    positionals: { min: 0, max: 0 },
    async run({ values }, context) {
      if (typeof values.client !== 'string') throw new UsageError('--client NAME is required', 'notify token get');
      const id = values.client;
      const secret = await clientSecret(context, id);
      const url = serverUrl(values, context);
      let body: TokenResponse;
      try {
        body = await requestToken(fetch, new URL('/auth/token', url).href, {
          type: 'client_credentials',
          clientId: id,
          clientSecret: secret,
        });
      } catch (error) {
        if (error instanceof NetworkError)
          throw new CliError(`cannot reach ${url}: ${(error.cause as Error | undefined)?.message ?? error.message}`);
        if (error instanceof NotifyClientError) {
          throw new CliError(`${error.code}: ${error.message}`, error.status === 401 || error.status === 400 ? EXIT_REFUSED : 1);
        }
        throw error;
      }
      context.stdout.write(flag(values.json) ? `${JSON.stringify(body)}\n` : `${body.access_token}\n`);
    },
  },
  {
    name: 'show',
    summary: "Print a token's header and claims (decoded, not verified).",
    synopsis: '[TOKEN]',
    description:
      'Reads the token from the argument or, better (the command line is visible to other users), from stdin: `echo "$NOTIFY_TOKEN" | notify token show`. The signature is NOT checked: the server does that. Exit 1 when it is not a JWT.',
    positionals: { min: 0, max: 1 },
    async run({ positionals }, context) {
      const token = (positionals[0] ?? (context.stdin.isTTY === true ? undefined : await readFirstLine(context.stdin)))?.trim();
      if (token === undefined || token === '') throw new UsageError('give a token as argument or on stdin', 'notify token show');
      const parts = token.split('.');
      let header: Record<string, unknown>;
      let claims: Record<string, unknown>;
      try {
        if (parts.length !== 3) throw new Error('parts');
        header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
        claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new CliError('not a JWT (expected three base64url parts, header and payload in JSON)');
      }
      const time = (value: unknown) => (typeof value === 'number' ? new Date(value * 1000).toISOString() : undefined);
      const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
      const summary = {
        header,
        claims,
        issuedAt: time(claims.iat),
        expiresAt: time(claims.exp),
        expired: exp === undefined ? undefined : exp * 1000 <= Date.now(),
        verified: false,
      };
      context.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    },
  },
]);

async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    // The server refuses bodies past MAX_BODY_BYTES anyway; do not read without end.
    if (size > 16 * 1024 * 1024) throw new CliError('the data on standard input is too large');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
