import path from 'node:path';
import { z } from 'zod';
import { IssuerConfigError, loadIssuersFile, type IssuerConfig } from './auth/issuer-config.js';
import { DEFAULT_ROLES, roleTableSchema, type RoleTable } from './auth/role-table.js';

/**
 * The whole configuration, parsed and checked once at start (only the entry points read
 * `process.env`), then passed in. Each setting is declared once, in `SETTINGS`: its parser, its
 * default and its documentation (the README's configuration table is generated from it:
 * `npm run docs:config`, and a test checks the two agree). `Config` is the type of what the
 * schema produces, so there is no second description of it to drift. Durations are written in
 * seconds in the environment and held in milliseconds from the moment they are parsed, with the
 * unit in the field's name (`accessTokenTtlMs`). A bad value stops the server with exit code 78
 * and a message that names the variable or file.
 */

/** What the README's configuration table says about a setting. */
export interface SettingDoc {
  readonly description: string;
  /** The default as written in the environment; absent when the setting is unset by default. */
  readonly default?: string;
  /** The default as the table shows it, when it is computed (`$DATA_DIR/users.json`). */
  readonly defaultText?: string;
  /** Set for durations given in seconds. */
  readonly unit?: 's';
}

type EnvValue<T> = z.ZodType<T, string>;

function setting<T>(schema: EnvValue<T>, doc: SettingDoc & { readonly default: string }): z.ZodType<T, string | undefined>;
function setting<T>(schema: EnvValue<T>, doc: SettingDoc): z.ZodType<T | undefined, string | undefined>;
function setting<T>(schema: EnvValue<T>, doc: SettingDoc): z.ZodType<T | undefined, string | undefined> {
  return (doc.default === undefined ? schema.optional() : schema.prefault(doc.default)).meta({ ...doc });
}

/** A whole number written plainly: no blanks, no `0x50`, no `1e3` (z.coerce would take all three). */
const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d{1,16}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
/** A duration in whole seconds, held as milliseconds. */
const seconds = (min: number, max: number) => int(min, max).transform((value) => value * 1000);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');
const csv = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0),
);
const text = z.string().min(1);
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

const seconds_ = (min: number, max: number, doc: Omit<SettingDoc, 'unit'> & { readonly default: string }) =>
  setting(seconds(min, max), { ...doc, unit: 's' });

/** Every setting, by environment variable, in the order of the README's table. */
export const SETTINGS = {
  PORT: setting(int(0, 65535), { default: '3000', description: 'TCP port.' }),
  HOST: setting(text, {
    default: '127.0.0.1',
    description: 'Address to listen on; loopback by default so a fresh install is not exposed.',
  }),
  DATA_DIR: setting(text, {
    default: './data',
    description:
      'Where the user file, the generated signing key and the store (`notify.db`, with `STORE=sqlite`) live (created with mode 0700; files 0600, replaced atomically).',
  }),
  USERS_FILE: setting(text, { defaultText: '`$DATA_DIR/users.json`', description: 'The account store shared with the CLI.' }),
  ROLES_FILE: setting(text, {
    defaultText: 'built-in roles',
    description:
      'JSON `{ "role": { "publish": [selectors], "subscribe": [selectors], "delegate": {...}, "permissions": [...] } }`. `{sub}` stands for the account name and must be a whole segment; `delegate` and `permissions` (`manage_accounts`, `revoke_subjects`) are for service clients, see [`docs/integration.md`](docs/integration.md). Checked at start: a bad entry stops the server naming `ROLES_FILE` and the entry.',
  }),
  ISSUERS_FILE: setting(text, {
    defaultText: 'none',
    description:
      'JSON `{ "issuers": [...] }`: identity providers whose access tokens are accepted as they are (exact `iss`, keys by discovery, `jwks_uri` or a static JWKS/PEM, an algorithm allowlist, `aud`, claims mapped to grants). See docs/integration.md. Checked at start: a bad entry stops the server naming `ISSUERS_FILE`, the entry and the field.',
  }),
  LOG_LEVEL: setting(oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), {
    default: 'info',
    description: 'pino level; logs are JSON lines and never hold tokens, passwords or cookies.',
  }),
  TRUST_PROXY: setting(bool, {
    default: 'false',
    description: 'Trust `X-Forwarded-For`/`-Proto` (only behind your own proxy: it decides client addresses for throttling).',
  }),
  PUBLIC_ORIGIN: setting(z.url('must be a URL'), { description: "The server's public URL; the default token issuer." }),
  CORS_ORIGINS: setting(csv, {
    default: '',
    defaultText: 'empty',
    description: 'Comma-separated origins allowed to call with credentials. Anything else, `null` included, gets no CORS headers.',
  }),
  COOKIE_SECURE: setting(oneOf(['auto', 'true', 'false']), {
    default: 'auto',
    description: '`Secure` cookies (and `__Host-`/`__Secure-` names) when the request came over TLS; `true` behind a TLS proxy.',
  }),
  TLS_CERT_FILE: setting(text, {
    description:
      "PEM certificate chain. With `TLS_KEY_FILE`, the server speaks HTTPS on `PORT`: HTTP/2, with HTTP/1.1 for clients that do not offer it (ALPN), TLS 1.2 at least. HTTP/2 lifts the browser's six-streams-per-host limit on EventSource. Unset: plain HTTP, for loopback or behind a TLS-terminating proxy.",
  }),
  TLS_KEY_FILE: setting(text, { description: 'PEM private key for `TLS_CERT_FILE`; one without the other refuses to start.' }),

  JWT_ALG: setting(oneOf(['EdDSA', 'ES256', 'HS256']), {
    default: 'EdDSA',
    description:
      '`EdDSA` (Ed25519) or `ES256`: key generated into `DATA_DIR`, public key at `/.well-known/jwks.json`. `HS256` needs `JWT_SECRET`.',
  }),
  JWT_SECRET: setting(z.string(), {
    description:
      'HS256 only: at least 32 random bytes (RFC 7518 §3.2), as base64url, base64 or hex. Shorter secrets, and secrets with fewer than 16 distinct byte values (`aaaa…`, a repeated word), refuse to start.',
  }),
  JWT_ISSUER: setting(text, {
    defaultText: '`PUBLIC_ORIGIN` or `http://HOST:PORT`',
    description: '`iss` of issued tokens; verified on every use.',
  }),
  JWT_AUDIENCE: setting(text, { default: 'notify', description: '`aud` of issued tokens; verified on every use.' }),
  ACCESS_TOKEN_TTL: seconds_(10, 3600, {
    default: '300',
    description: 'Access-token lifetime (10–3600). Minutes, not hours: a leaked token is useful briefly, and streams are renewed in-band.',
  }),
  REFRESH_TOKEN_IDLE_TTL: seconds_(60, 90 * 86400, {
    default: '86400',
    description: 'A refresh token unused this long expires (RFC 9700 §4.14.2).',
  }),
  REFRESH_TOKEN_ABSOLUTE_TTL: seconds_(60, 365 * 86400, {
    default: '2592000',
    description: 'A sign-in lasts at most 30 days, however active.',
  }),
  CLOCK_TOLERANCE: seconds_(0, 60, { default: '5', description: 'Skew allowed on `exp`/`iat`/`nbf` (0–60).' }),

  SCRYPT_LOG_N: setting(int(10, 20), {
    default: '17',
    description:
      "scrypt cost for new password hashes: N=2^17, r=8, p=1 is OWASP's recommendation. Stored hashes carry their own parameters.",
  }),
  LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS: setting(int(1, 1000), {
    default: '10',
    description: 'Sign-in attempts per account and address per window, counted before hashing. A success clears it.',
  }),
  LOGIN_MAX_PER_ADDRESS: setting(int(1, 100000), {
    default: '100',
    description: 'Attempts per address per window, over all accounts (password spraying).',
  }),
  LOGIN_MAX_PER_ACCOUNT: setting(int(1, 100000), {
    default: '50',
    description:
      'Failed attempts per account per window from anywhere (distributed guessing). Addresses that signed in to the account in the last 30 days are exempt, so an attacker cannot lock the owner out by failing on purpose.',
  }),
  LOGIN_WINDOW: seconds_(1, 86400, {
    default: '900',
    description: 'The throttling window; counters expire by themselves, nothing locks for good.',
  }),

  MAX_BODY_BYTES: setting(int(1024, 16 * 1024 * 1024), {
    default: '65536',
    description:
      'Request body limit (413 past it, read no further; the connection is closed). Bodies are UTF-8 JSON or forms, never compressed (415); invalid UTF-8 is 400 `invalid_encoding`, not silently replaced.',
  }),
  MAX_DATA_BYTES: setting(int(16, 16 * 1024 * 1024), { default: '32768', description: "Limit on an event's serialised `data` (413)." }),
  MAX_TOPICS_PER_REQUEST: setting(int(1, 256), { default: '16', description: 'Topics per publish, selectors per stream.' }),

  HEARTBEAT_INTERVAL: seconds_(0, 3600, {
    default: '15',
    description: 'Comment line on idle streams so proxies keep them open; `0` turns it off.',
  }),
  EXPIRY_WARNING: seconds_(1, 3600, { default: '60', description: 'How long before token expiry a stream gets `token-expiring`.' }),
  RETRY_MS: setting(int(0, 600000), { default: '3000', description: 'The `retry:` EventSource waits before reconnecting.' }),
  STREAM_BUFFER_BYTES: setting(int(4096, 64 * 1024 * 1024), {
    default: '1048576',
    description:
      'Bytes that may wait for one subscriber that does not read before it is cut off. Catch-up after a resume is paced by the socket, so a reader that reads is never cut by its own backlog.',
  }),
  MAX_STREAMS: setting(int(1, 10_000_000), { default: '100000', description: 'Open streams per process (503 `server_busy` past it).' }),
  MAX_STREAMS_PER_USER: setting(int(1, 100_000), {
    default: '16',
    description: 'Open streams per account, over every instance (429 `too_many_streams`).',
  }),
  SHUTDOWN_GRACE: seconds_(0, 600, {
    default: '10',
    description: 'On SIGTERM/SIGINT: streams get `closed` (`shutdown`) at once; in-flight requests get this long.',
  }),

  STORE: setting(oneOf(['sqlite', 'memory', 'redis']), {
    defaultText: '`redis` with `REDIS_URL`, else `sqlite`',
    description:
      'Where history, refresh tokens, revocations, idempotency keys and tickets live. `sqlite`: the file `$DATA_DIR/notify.db`, so a restart (deploy, crash, `kill -9`) signs nobody out, forgets no revocation and resumes every stream without `reset` (see "The store" in docs/architecture.md). `memory`: this process only, gone at a restart (tests, or by choice). `redis`: shared by every instance; needs `REDIS_URL`.',
  }),
  STORE_FSYNC: setting(oneOf(['always', 'everysec']), {
    default: 'always',
    description:
      "`STORE=sqlite`: `always` answers a write (a publish's 201, a sign-in) only once it is fsynced: nothing acknowledged is lost to a crash, an OS crash or a power cut. `everysec` answers once the write reached the OS and fsyncs at least once a second: `kill -9` of the server still loses nothing, an OS crash or power cut can lose the last second. Both commit writes that arrive together as one (group commit).",
  }),
  HISTORY_SIZE: setting(int(0, 1_000_000), { default: '1000', description: 'Events kept per topic for replay.' }),
  HISTORY_TTL: seconds_(1, 30 * 86400, { default: '3600', description: 'How long an event stays replayable.' }),
  HISTORY_MAX_TOPICS: setting(int(1, 10_000_000), {
    default: '10000',
    description: 'Topics with history; the least recently published are forgotten first (a replay across them answers `reset`).',
  }),
  HISTORY_MAX_BYTES: setting(int(1024 * 1024, 2 ** 50), {
    default: String(256 * 1024 * 1024),
    defaultText: '268435456 (256 MiB)',
    description:
      '`STORE=sqlite`: bytes of event data (data, type and topic names) kept for replay over all topics; past it the oldest events go first (a replay across them answers `reset`). The file holds more: about 250 bytes per event held (rows and indexes), the copy of its event each idempotency key keeps, and free pages (measured: 42 MiB for 16 MiB of 3 KB events and 5,000 keys).',
  }),
  IDEMPOTENCY_TTL: seconds_(1, 7 * 86400, { default: '86400', description: 'How long a publish `idempotencyKey` is remembered.' }),
  IDEMPOTENCY_MAX_KEYS: setting(int(0, 10_000_000), { default: '100000', description: 'Bound on remembered keys.' }),

  REDIS_URL: setting(z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'), {
    description:
      '`redis://[:password@]host:port[/db]` or `rediss://`: run on Redis instead of the embedded store, so events, refresh tokens, revocations, login counters and stream slots are shared by every instance (see "Running more than one instance"). Setting it chooses `STORE=redis`; it is refused with `STORE=sqlite` or `memory`.',
  }),
  REDIS_KEY_PREFIX: setting(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1 to 64 characters of A-Z a-z 0-9 _ . : -'), {
    default: 'notify:',
    description: 'Prefix of every Redis key, so several deployments can share one Redis.',
  }),
  REDIS_STREAM_MAXLEN: setting(int(1000, 100_000_000), {
    default: '100000',
    description:
      'Events kept for replay over all topics (on Redis, `HISTORY_SIZE` and `HISTORY_MAX_TOPICS` do not apply; `HISTORY_TTL` does).',
  }),
  WORKERS: setting(int(1, 256), {
    default: '1',
    description: 'Processes serving `PORT` on this machine (node:cluster); more than one needs `REDIS_URL`.',
  }),
  METRICS: setting(oneOf(['off', 'token', 'listen']), {
    default: 'off',
    description:
      '`GET /metrics` (Prometheus): `off` answers 403; `token` serves it on the main port to `Authorization: Bearer $METRICS_TOKEN`; `listen` serves it, without authentication, only on `METRICS_LISTEN`. Off by default: stream counts and failure reasons are not for everyone.',
  }),
  METRICS_TOKEN: setting(z.string().min(32, 'must be at least 32 characters (generate one with `openssl rand -base64 32`)').max(1024), {
    description: 'Required with `METRICS=token`, at least 32 characters (`openssl rand -base64 32`). Not an access token.',
  }),
  METRICS_LISTEN: setting(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'must be host:port'), {
    default: '127.0.0.1:9464',
    description:
      '`host:port` of the metrics listener for `METRICS=listen` (9464 is the port Prometheus exporters conventionally use); keep it on loopback or a private network.',
  }),
} as const;

type SettingName = keyof typeof SETTINGS;

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (32 bytes). */
const MIN_HMAC_SECRET_BYTES = 32;
/**
 * 32 random bytes hold about 30 distinct values (fewer than 16 happens with probability far below
 * 2^-40), so fewer distinct bytes than this means a secret typed or repeated by a person.
 */
const MIN_HMAC_SECRET_DISTINCT_BYTES = 16;

/**
 * The schema of the whole configuration: the settings, then the checks that span several of them
 * and the shape the rest of the server reads.
 * @param readFile reads `ROLES_FILE` and `ISSUERS_FILE` (and the key files it names); injected so tests need no file system.
 */
function configSchema(readFile: (file: string) => string) {
  return z.object(SETTINGS).transform((e, ctx) => {
    const fail = (key: SettingName, message: string) => {
      ctx.addIssue({ code: 'custom', path: [key], message });
      return z.NEVER;
    };

    let secret: Uint8Array | undefined;
    if (e.JWT_ALG === 'HS256') {
      if (e.JWT_SECRET === undefined) return fail('JWT_SECRET', 'is required when JWT_ALG=HS256');
      secret = decodeSecret(e.JWT_SECRET);
      // A long secret with few distinct bytes ('aaaa...', a repeated word) is not random: refuse it too.
      if (secret.length < MIN_HMAC_SECRET_BYTES || new Set(secret).size < MIN_HMAC_SECRET_DISTINCT_BYTES) {
        return fail(
          'JWT_SECRET',
          `must hold at least ${MIN_HMAC_SECRET_BYTES} random bytes (give it as base64url, base64 or hex); generate one with \`openssl rand -base64 32\``,
        );
      }
    } else if (e.JWT_SECRET !== undefined) {
      return fail('JWT_SECRET', `is only used with JWT_ALG=HS256 (JWT_ALG is ${e.JWT_ALG})`);
    }
    if ((e.TLS_CERT_FILE === undefined) !== (e.TLS_KEY_FILE === undefined)) {
      return fail(e.TLS_CERT_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE', 'TLS_CERT_FILE and TLS_KEY_FILE go together');
    }
    if (e.REFRESH_TOKEN_ABSOLUTE_TTL < e.REFRESH_TOKEN_IDLE_TTL) {
      return fail('REFRESH_TOKEN_ABSOLUTE_TTL', 'must not be shorter than REFRESH_TOKEN_IDLE_TTL');
    }
    if (e.MAX_DATA_BYTES > e.MAX_BODY_BYTES) return fail('MAX_DATA_BYTES', 'must not be larger than MAX_BODY_BYTES');
    const store = e.STORE ?? (e.REDIS_URL === undefined ? 'sqlite' : 'redis');
    if (store === 'redis' && e.REDIS_URL === undefined) return fail('REDIS_URL', 'is required when STORE=redis');
    if (store !== 'redis' && e.REDIS_URL !== undefined) return fail('REDIS_URL', `is only used with STORE=redis (STORE is ${store})`);
    if (e.WORKERS > 1 && store !== 'redis') {
      return fail('WORKERS', 'more than one worker needs REDIS_URL (workers share events and state through Redis)');
    }
    if (e.HISTORY_MAX_BYTES < e.MAX_DATA_BYTES) return fail('HISTORY_MAX_BYTES', 'must not be smaller than MAX_DATA_BYTES');
    if (e.METRICS === 'token' && e.METRICS_TOKEN === undefined) return fail('METRICS_TOKEN', 'is required when METRICS=token');
    const metricsColon = e.METRICS_LISTEN.lastIndexOf(':');
    const metricsPort = Number(e.METRICS_LISTEN.slice(metricsColon + 1));
    if (metricsPort > 65535) return fail('METRICS_LISTEN', 'port must be at most 65535');

    let roles: RoleTable = DEFAULT_ROLES;
    if (e.ROLES_FILE !== undefined) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFile(e.ROLES_FILE));
      } catch (error) {
        return fail('ROLES_FILE', `${e.ROLES_FILE} cannot be read as JSON (${(error as Error).message})`);
      }
      const table = roleTableSchema.safeParse(raw);
      if (!table.success) {
        const issue = table.error.issues[0]!;
        return fail('ROLES_FILE', `${e.ROLES_FILE}: ${issue.path.join('.') || 'the file'}: ${issue.message}`);
      }
      roles = table.data;
    }

    const issuer = e.JWT_ISSUER ?? e.PUBLIC_ORIGIN ?? `http://${e.HOST}:${e.PORT}`;
    let issuers: IssuerConfig[] = [];
    if (e.ISSUERS_FILE !== undefined) {
      try {
        issuers = loadIssuersFile(e.ISSUERS_FILE, { readFile, knownRoles: Object.keys(roles), ownIssuer: issuer });
      } catch (error) {
        if (error instanceof IssuerConfigError) return fail('ISSUERS_FILE', error.message);
        throw error;
      }
    }

    const dataDir = path.resolve(e.DATA_DIR);
    return {
      port: e.PORT,
      host: e.HOST,
      dataDir,
      usersFile: path.resolve(dataDir, e.USERS_FILE ?? 'users.json'),
      roles,
      /** Trusted external issuers (`ISSUERS_FILE`); empty when not set. */
      issuers,
      logLevel: e.LOG_LEVEL,
      trustProxy: e.TRUST_PROXY,
      publicOrigin: e.PUBLIC_ORIGIN,
      corsOrigins: e.CORS_ORIGINS,
      cookieSecure: e.COOKIE_SECURE === 'auto' ? ('auto' as const) : e.COOKIE_SECURE === 'true',
      /** PEM certificate chain and private key: HTTPS with HTTP/2 (and HTTP/1.1 fallback) on PORT. */
      tls:
        e.TLS_CERT_FILE === undefined || e.TLS_KEY_FILE === undefined
          ? undefined
          : { certFile: path.resolve(e.TLS_CERT_FILE), keyFile: path.resolve(e.TLS_KEY_FILE) },
      jwt: {
        alg: e.JWT_ALG,
        secret,
        issuer,
        audience: e.JWT_AUDIENCE,
        accessTokenTtlMs: e.ACCESS_TOKEN_TTL,
        clockToleranceMs: e.CLOCK_TOLERANCE,
      },
      refreshToken: { idleTtlMs: e.REFRESH_TOKEN_IDLE_TTL, absoluteTtlMs: e.REFRESH_TOKEN_ABSOLUTE_TTL },
      scryptLogN: e.SCRYPT_LOG_N,
      login: {
        maxPerAccountAndAddress: e.LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS,
        maxPerAddress: e.LOGIN_MAX_PER_ADDRESS,
        maxPerAccount: e.LOGIN_MAX_PER_ACCOUNT,
        windowMs: e.LOGIN_WINDOW,
      },
      limits: { maxBodyBytes: e.MAX_BODY_BYTES, maxDataBytes: e.MAX_DATA_BYTES, maxTopicsPerRequest: e.MAX_TOPICS_PER_REQUEST },
      streams: {
        heartbeatIntervalMs: e.HEARTBEAT_INTERVAL,
        expiryWarningMs: e.EXPIRY_WARNING,
        retryMs: e.RETRY_MS,
        bufferBytes: e.STREAM_BUFFER_BYTES,
        maxStreams: e.MAX_STREAMS,
        maxStreamsPerUser: e.MAX_STREAMS_PER_USER,
        shutdownGraceMs: e.SHUTDOWN_GRACE,
      },
      history: {
        size: e.HISTORY_SIZE,
        ttlMs: e.HISTORY_TTL,
        maxTopics: e.HISTORY_MAX_TOPICS,
        /** Bytes of event data kept over all topics (the SQLite store). */
        maxBytes: e.HISTORY_MAX_BYTES,
        idempotencyTtlMs: e.IDEMPOTENCY_TTL,
        idempotencyMaxKeys: e.IDEMPOTENCY_MAX_KEYS,
      },
      /** Where state lives (`STORE`): chosen here, once, and nowhere else. */
      backend: backendOf(store, e.REDIS_URL, dataDir, e),
      /** Processes serving the port (node:cluster); more than one needs Redis. */
      workers: e.WORKERS,
      /** `GET /metrics`: off, behind a bearer token on the main port, or on a separate address. */
      metrics: {
        access: e.METRICS,
        token: e.METRICS_TOKEN,
        listen: { host: e.METRICS_LISTEN.slice(0, metricsColon).replace(/^\[|\]$/g, ''), port: metricsPort },
      },
    };
  });
}

type BackendConfig =
  | { readonly kind: 'sqlite'; readonly file: string; readonly fsync: 'always' | 'everysec' }
  | { readonly kind: 'memory' }
  | { readonly kind: 'redis'; readonly url: string; readonly keyPrefix: string; readonly streamMaxLen: number };

function backendOf(
  store: 'sqlite' | 'memory' | 'redis',
  redisUrl: string | undefined,
  dataDir: string,
  e: { readonly STORE_FSYNC: 'always' | 'everysec'; readonly REDIS_KEY_PREFIX: string; readonly REDIS_STREAM_MAXLEN: number },
): BackendConfig {
  switch (store) {
    case 'sqlite':
      return { kind: 'sqlite', file: path.join(dataDir, 'notify.db'), fsync: e.STORE_FSYNC };
    case 'memory':
      return { kind: 'memory' };
    case 'redis':
      return { kind: 'redis', url: redisUrl!, keyPrefix: e.REDIS_KEY_PREFIX, streamMaxLen: e.REDIS_STREAM_MAXLEN };
  }
}

/** The configuration the server runs with: exactly what the schema produces. */
export type Config = z.output<ReturnType<typeof configSchema>>;

/** A configuration value that cannot be used; `key` names the variable (or file). */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment into a `Config`.
 * @param readFile reads ROLES_FILE; injected so tests need no file system.
 * @throws ConfigError naming the first bad variable.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  readFile: (file: string) => string = () => {
    throw new Error('no file reader');
  },
): Config {
  // An empty variable means "use the default"; any other value is parsed exactly as written.
  const present = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => value !== undefined && value !== '' && Object.hasOwn(SETTINGS, key)),
  );
  const parsed = configSchema(readFile).safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message);
  }
  return parsed.data;
}

function decodeSecret(value: string): Uint8Array {
  if (/^[0-9a-fA-F]+$/.test(value) && value.length % 2 === 0) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9_-]+$/.test(value)) return Buffer.from(value, 'base64url');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return Buffer.from(value, 'base64');
  return Buffer.from(value, 'utf8');
}
