import path from 'node:path';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { checkHmacSecret, HMAC_SECRET_HINT } from './auth/hmac-secret.js';
import { IssuerConfigError, loadIssuersFile, type IssuerConfig } from './auth/issuer-config.js';
import { DEFAULT_ROLES, roleTableSchema, type RoleTable } from './auth/role-table.js';
import { readConfigFile, type ConfigProblem } from './config-file.js';
import { PresenceConfigError, PresencePolicy } from './presence/presence-policy.js';
import { parseRedisTarget, type RedisTarget } from './redis-target.js';
import { parseWebhookConfig, WebhookConfigError, type WebhookTarget } from './webhooks/webhook-config.js';

export type { ConfigProblem } from './config-file.js';

/**
 * The whole configuration, parsed and checked once at start (only the entry points read
 * `process.env`), then passed in. Each setting is declared once, in `SETTINGS`: its parser, its
 * default and its documentation (the README's configuration table is generated from it:
 * `npm run docs:config`, and a test checks the two agree). `Config` is the type of what the
 * schema produces, so there is no second description of it to drift. Durations are written in
 * seconds in the environment and held in milliseconds from the moment they are parsed, with the
 * unit in the field's name (`accessTokenTtlMs`). A bad value stops the server with exit code 78
 * and a message that names the variable or file.
 *
 * The settings come from the environment and, when one is named (`--config FILE` or
 * `NOTIFY_CONFIG`), a configuration file with the same names as keys (`config-file.ts`); a
 * variable that is set and not empty overrides the file, the file overrides the default.
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
    description: 'pino level; logs never hold tokens, passwords or cookies.',
  }),
  LOG_FORMAT: setting(oneOf(['auto', 'json', 'pretty']), {
    default: 'auto',
    description:
      '`json`: one JSON object a line (pino), for log collectors; `pretty`: readable lines and a start-up banner (the URL, `/docs`, the user file, how to add the first account); `auto`: `pretty` when stdout is a terminal, else `json`.',
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
      'HS256 only: at least 32 random bytes (RFC 7518 §3.2) as base64url, base64 or hex: `openssl rand -base64 32`. Anything that reads as text refuses to start: a passphrase, words run together (in any case, or l33t), a passphrase put through base64, a repeated pattern, a shorter secret.',
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
  EXPIRY_WARNING: setting(seconds(1, 3600), {
    defaultText: '`60`, or half of `ACCESS_TOKEN_TTL` when that is shorter',
    unit: 's',
    description:
      'How long before token expiry a stream gets `token-expiring`. At most half of `ACCESS_TOKEN_TTL`, so a fresh token is never told it expires as its stream opens and a stream renews at most twice per token lifetime; a larger value refuses to start.',
  }),
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
      '`STORE=sqlite`: bytes of event data (data, type and topic names) kept for replay over all topics; past it the oldest events go first (a replay across them answers `reset`). The file holds more: about 250 bytes per event held (rows and indexes), about 150 bytes per idempotency key, and free pages (measured: 23 MiB for 16 MiB of 3 KB events and 5,000 keys).',
  }),
  IDEMPOTENCY_TTL: seconds_(1, 7 * 86400, { default: '86400', description: 'How long a publish `idempotencyKey` is remembered.' }),
  IDEMPOTENCY_MAX_KEYS: setting(int(0, 10_000_000), { default: '100000', description: 'Bound on remembered keys.' }),

  REDIS_URL: setting(
    z
      .string()
      .regex(
        /^(rediss?:\/\/|rediss?\+(sentinel|cluster):\/\/)/,
        'must be a redis://, rediss://, redis+sentinel://host:port,.../name or redis+cluster://host:port,... URL',
      ),
    {
      description:
        'Run on Redis instead of the embedded store (setting it chooses `STORE=redis`; it is refused with `STORE=sqlite` or `memory`): events, refresh tokens, revocations, login counters and stream slots are shared by every instance (see "Running more than one instance"). `redis://[user:pass@]host:port` (or `rediss://`) for one primary; `redis+sentinel://[user:pass@]host:port,host:port,.../master-name` to follow the primary Sentinel names through failovers; `redis+cluster://[user:pass@]host:port,...` for Redis Cluster (any reachable nodes; the rest are discovered).',
    },
  ),
  REDIS_KEY_PREFIX: setting(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1 to 64 characters of A-Z a-z 0-9 _ . : -'), {
    default: 'notify:',
    description: 'Prefix of every Redis key, so several deployments can share one Redis.',
  }),
  REDIS_PARTITIONS: setting(int(1, 1024), {
    default: '16',
    description:
      'Partition logs that topics are hashed to on Redis. Each instance reads only the partitions its streams can match (a wildcard selector reads all). Fixed once events are stored: an instance with another value refuses to start.',
  }),
  REDIS_STREAM_MAXLEN: setting(int(100, 100_000_000), {
    default: '10000',
    description:
      'Entries kept in each Redis partition log (and none older than `HISTORY_TTL`). An instance that falls further behind repairs from per-topic history, or sends `reset` to the streams that lost events; never a silent gap. History itself is `HISTORY_SIZE` per topic, as on the embedded default.',
  }),
  REDIS_WAIT_REPLICAS: setting(int(0, 16), {
    default: '0',
    description:
      "Replicas that must hold an event before its publish answers 201 (`WAIT`, at most 1 s, else 503 `redis_unavailable` and a retry with the same `idempotencyKey` gets the stored event). `0`: the primary's answer. `1` with a replica keeps every acknowledged event through a Sentinel failover, at about one replication round trip per publish.",
  }),
  PRESENCE_FILE: setting(text, {
    defaultText: 'no presence',
    description:
      'JSON or YAML `{ "topics": [ { "selector": "documents/*", "readers": "subscribers" } ] }`: the topics that carry presence (who is subscribed to them, by account), and who may read it: `subscribers` (whoever may subscribe to the topic or holds a presence grant for it) or `presence-grant` (only a role\'s `presence` grant). The first rule that matches a topic decides. Checked at start: a bad entry stops the server naming `PRESENCE_FILE` and the entry.',
  }),
  PRESENCE_LEAVE_DELAY: seconds_(0, 300, {
    default: '5',
    description:
      'How long a member stays present after her last stream on the topic ends: a reconnect within it (on any instance) is no leave and no join, so a network blip or a page reload makes no noise.',
  }),
  PRESENCE_LEASE: seconds_(3, 600, {
    default: '20',
    description:
      "With Redis: each instance's members live under a lease it renews every quarter of this. The members of an instance that crashed are removed (once, `lease_expired`) by another instance within 1.1 × this.",
  }),
  PRESENCE_PAGE_SIZE: setting(int(1, 1000), {
    default: '100',
    description:
      "Members in a stream's `presence-snapshot` event and in one page of `GET /presence` (the most a page may ask for); the rest by paging.",
  }),
  WEBHOOKS_FILE: setting(text, {
    defaultText: 'no webhooks',
    description:
      'JSON or YAML `{ "targets": [ { "url", "events", "secret", "topics"?, ... } ] }`: lifecycle webhooks to your backend (see "Lifecycle webhooks"). Only these URLs are ever called; a URL that is not http(s) or points at a private address without `allowPrivateNetwork` stops the server at start, naming `WEBHOOKS_FILE` and the entry.',
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

export type SettingName = keyof typeof SETTINGS;

/** `token-expiring` this long before expiry, unless EXPIRY_WARNING says otherwise or the token lives less than twice as long. */
const DEFAULT_EXPIRY_WARNING_MS = 60_000;

/**
 * The schema of the whole configuration: the settings, then the checks that span several of them
 * and the shape the rest of the server reads.
 * @param readFile reads `ROLES_FILE`, `ISSUERS_FILE` (and the key files it names), `PRESENCE_FILE` and `WEBHOOKS_FILE`; injected so tests need no file system.
 */
function configSchema(readFile: (file: string) => string) {
  return z.object(SETTINGS).transform((e, ctx) => {
    // Every problem is reported, not only the first (`notify config check` lists them all); the
    // configuration is built only when there is none.
    let failed = false;
    const fail = (key: SettingName, message: string) => {
      ctx.addIssue({ code: 'custom', path: [key], message });
      failed = true;
      return z.NEVER;
    };

    let secret: Uint8Array | undefined;
    if (e.JWT_ALG === 'HS256') {
      if (e.JWT_SECRET === undefined) fail('JWT_SECRET', `is required when JWT_ALG=HS256; ${HMAC_SECRET_HINT}`);
      else {
        const verdict = checkHmacSecret(e.JWT_SECRET);
        if (verdict.ok) secret = verdict.bytes;
        else fail('JWT_SECRET', verdict.message);
      }
    } else if (e.JWT_SECRET !== undefined) {
      fail('JWT_SECRET', `is only used with JWT_ALG=HS256 (JWT_ALG is ${e.JWT_ALG})`);
    }
    if ((e.TLS_CERT_FILE === undefined) !== (e.TLS_KEY_FILE === undefined)) {
      fail(e.TLS_CERT_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE', 'TLS_CERT_FILE and TLS_KEY_FILE go together');
    }
    if (e.REFRESH_TOKEN_ABSOLUTE_TTL < e.REFRESH_TOKEN_IDLE_TTL) {
      fail('REFRESH_TOKEN_ABSOLUTE_TTL', 'must not be shorter than REFRESH_TOKEN_IDLE_TTL');
    }
    // ACCESS_TOKEN_TTL=20 with a 60 s warning sent `token-expiring` in the same millisecond as
    // `connected`. Unset, the warning shrinks with the lifetime; set, a value past half of it is a
    // mistake to fix, not to clamp silently (the operator asked for something else).
    if (e.EXPIRY_WARNING !== undefined && e.EXPIRY_WARNING * 2 > e.ACCESS_TOKEN_TTL) {
      fail(
        'EXPIRY_WARNING',
        `must be at most half of ACCESS_TOKEN_TTL (${e.ACCESS_TOKEN_TTL / 1000} s, so at most ${Math.floor(e.ACCESS_TOKEN_TTL / 2000)} s): ` +
          'a larger one warns a fresh token that it expires as its stream opens; unset, it is 60 s or half of ACCESS_TOKEN_TTL',
      );
    }
    const expiryWarningMs = e.EXPIRY_WARNING ?? Math.min(DEFAULT_EXPIRY_WARNING_MS, e.ACCESS_TOKEN_TTL / 2);
    if (e.MAX_DATA_BYTES > e.MAX_BODY_BYTES) fail('MAX_DATA_BYTES', 'must not be larger than MAX_BODY_BYTES');
    const store = e.STORE ?? (e.REDIS_URL === undefined ? 'sqlite' : 'redis');
    if (store === 'redis' && e.REDIS_URL === undefined) fail('REDIS_URL', 'is required when STORE=redis');
    if (store !== 'redis' && e.REDIS_URL !== undefined) fail('REDIS_URL', `is only used with STORE=redis (STORE is ${store})`);
    if (e.WORKERS > 1 && store !== 'redis') {
      fail('WORKERS', 'more than one worker needs REDIS_URL (workers share events and state through Redis)');
    }
    if (e.HISTORY_MAX_BYTES < e.MAX_DATA_BYTES) fail('HISTORY_MAX_BYTES', 'must not be smaller than MAX_DATA_BYTES');
    let redisTarget: RedisTarget | undefined;
    if (store === 'redis' && e.REDIS_URL !== undefined) {
      try {
        redisTarget = parseRedisTarget(e.REDIS_URL);
      } catch (error) {
        fail('REDIS_URL', (error as Error).message);
      }
    }
    if (e.METRICS === 'token' && e.METRICS_TOKEN === undefined) fail('METRICS_TOKEN', 'is required when METRICS=token');
    const metricsColon = e.METRICS_LISTEN.lastIndexOf(':');
    const metricsPort = Number(e.METRICS_LISTEN.slice(metricsColon + 1));
    if (metricsPort > 65535) fail('METRICS_LISTEN', 'port must be at most 65535');

    let roles: RoleTable | undefined = DEFAULT_ROLES;
    if (e.ROLES_FILE !== undefined) {
      roles = undefined;
      let raw: unknown;
      try {
        raw = JSON.parse(readFile(e.ROLES_FILE));
      } catch (error) {
        fail('ROLES_FILE', `${e.ROLES_FILE} cannot be read as JSON (${(error as Error).message})`);
      }
      const table = raw === undefined ? undefined : roleTableSchema.safeParse(raw);
      if (table?.success) roles = table.data;
      else if (table !== undefined) {
        const issue = table.error.issues[0]!;
        fail('ROLES_FILE', `${e.ROLES_FILE}: ${issue.path.join('.') || 'the file'}: ${issue.message}`);
      }
    }

    const issuer = e.JWT_ISSUER ?? e.PUBLIC_ORIGIN ?? `http://${e.HOST}:${e.PORT}`;
    let issuers: IssuerConfig[] = [];
    // Checked against the role table, so not when that is unusable (its problem is reported already).
    if (e.ISSUERS_FILE !== undefined && roles !== undefined) {
      try {
        issuers = loadIssuersFile(e.ISSUERS_FILE, { readFile, knownRoles: Object.keys(roles), ownIssuer: issuer });
      } catch (error) {
        if (!(error instanceof IssuerConfigError)) throw error;
        fail('ISSUERS_FILE', error.message);
      }
    }
    let presence = PresencePolicy.NONE;
    if (e.PRESENCE_FILE !== undefined) {
      const file = e.PRESENCE_FILE;
      const raw = readStructured(file, readFile);
      if (!raw.ok) fail('PRESENCE_FILE', raw.message);
      else {
        try {
          presence = PresencePolicy.parse(raw.value);
        } catch (error) {
          if (!(error instanceof PresenceConfigError)) throw error;
          fail('PRESENCE_FILE', `${file}: ${error.message}`);
        }
      }
    }
    let webhookTargets: readonly WebhookTarget[] = [];
    if (e.WEBHOOKS_FILE !== undefined) {
      const file = e.WEBHOOKS_FILE;
      const raw = readStructured(file, readFile);
      if (!raw.ok) fail('WEBHOOKS_FILE', raw.message);
      else {
        try {
          webhookTargets = parseWebhookConfig(raw.value);
        } catch (error) {
          if (!(error instanceof WebhookConfigError)) throw error;
          fail('WEBHOOKS_FILE', `${file}: ${error.message}`);
        }
      }
    }
    if (failed || roles === undefined) return z.NEVER;

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
      /** `auto` is decided by the entry point, which knows whether stdout is a terminal. */
      logFormat: e.LOG_FORMAT,
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
        expiryWarningMs,
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
      backend: backendOf(
        store,
        e.REDIS_URL === undefined || redisTarget === undefined ? undefined : { url: e.REDIS_URL, target: redisTarget },
        dataDir,
        e,
      ),
      /** Who is present on which topics (issue 15): the rules, the debounce, the lease and the page size. */
      presence: {
        policy: presence,
        leaveDelayMs: e.PRESENCE_LEAVE_DELAY,
        leaseMs: e.PRESENCE_LEASE,
        pageSize: e.PRESENCE_PAGE_SIZE,
      },
      /** Lifecycle webhook targets (`WEBHOOKS_FILE`), checked. */
      webhooks: { targets: webhookTargets },
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
  | {
      readonly kind: 'redis';
      readonly url: string;
      /** REDIS_URL parsed: a single Redis, Sentinel or Cluster. */
      readonly target: RedisTarget;
      readonly keyPrefix: string;
      readonly partitions: number;
      readonly streamMaxLen: number;
      readonly waitReplicas: number;
    };

/** The backend in a few words, for the start-up banner and `notify config check` (no credentials). */
export function describeBackend(backend: BackendConfig): string {
  switch (backend.kind) {
    case 'sqlite':
      return `embedded (SQLite, ${backend.file})`;
    case 'memory':
      return 'embedded (memory: gone at a restart)';
    case 'redis':
      return 'Redis';
  }
}

function backendOf(
  store: 'sqlite' | 'memory' | 'redis',
  redis: { readonly url: string; readonly target: RedisTarget } | undefined,
  dataDir: string,
  e: {
    readonly STORE_FSYNC: 'always' | 'everysec';
    readonly REDIS_KEY_PREFIX: string;
    readonly REDIS_PARTITIONS: number;
    readonly REDIS_STREAM_MAXLEN: number;
    readonly REDIS_WAIT_REPLICAS: number;
  },
): BackendConfig {
  switch (store) {
    case 'sqlite':
      return { kind: 'sqlite', file: path.join(dataDir, 'notify.db'), fsync: e.STORE_FSYNC };
    case 'memory':
      return { kind: 'memory' };
    case 'redis':
      // The transform has failed already (REDIS_URL missing or unparsable) when `redis` is absent.
      if (redis === undefined) throw new Error('STORE=redis without a parsed REDIS_URL');
      return {
        kind: 'redis',
        ...redis,
        keyPrefix: e.REDIS_KEY_PREFIX,
        partitions: e.REDIS_PARTITIONS,
        streamMaxLen: e.REDIS_STREAM_MAXLEN,
        waitReplicas: e.REDIS_WAIT_REPLICAS,
      };
  }
}

/** The configuration the server runs with: exactly what the schema produces. */
export type Config = z.output<ReturnType<typeof configSchema>>;

/**
 * A configuration value that cannot be used; `key` names the variable (or file), `file` the
 * configuration file the value was read from, and `problems` every problem found (the first is
 * this one).
 */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(
    readonly key: string,
    message: string,
    readonly file?: string,
    problems?: readonly ConfigProblem[],
  ) {
    super(describeProblem({ key, message, ...(file === undefined ? {} : { file }) }));
    this.name = 'ConfigError';
    this.problems = problems ?? [{ key, message, ...(file === undefined ? {} : { file }) }];
  }
}

/** `FILE: KEY: message` for a value from the configuration file, `KEY: message` otherwise. */
export function describeProblem(problem: ConfigProblem): string {
  return `${problem.file === undefined ? '' : `${problem.file}: `}${problem.key}: ${problem.message}`;
}

/** Where the configuration comes from. */
export interface ConfigSources {
  /** The environment; NOTIFY_CONFIG names the configuration file unless `file` does. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** `--config FILE` of the command line; it wins over NOTIFY_CONFIG. */
  readonly file?: string;
  /** Reads the configuration file, ROLES_FILE and ISSUERS_FILE (and the key files it names). */
  readonly readFile: (file: string) => string;
}

/** A setting given in the environment or the file, as written, and where. */
interface GivenSetting {
  readonly value: string;
  readonly from: 'environment' | 'file';
}

/** Everything `inspectConfig` found. */
export interface ConfigReport {
  /** The configuration, when there is no problem. */
  readonly config: Config | undefined;
  /** Every problem found, in the order of the settings; empty when `config` is set. */
  readonly problems: readonly ConfigProblem[];
  /** The configuration file read (absolute), if any. */
  readonly file: string | undefined;
  /** The settings that were given, by name; the others have their default. */
  readonly given: Readonly<Partial<Record<SettingName, GivenSetting>>>;
}

/**
 * Reads the configuration file (if one is named) and the environment, and parses them with the
 * settings schema, reporting every problem rather than the first. A variable that is set and not
 * empty overrides the file; an empty one means "not set" (the file's value, else the default).
 */
export function inspectConfig(sources: ConfigSources): ConfigReport {
  const { env, readFile } = sources;
  const namedBy = sources.file === undefined ? 'NOTIFY_CONFIG' : '--config';
  const named = sources.file ?? (env.NOTIFY_CONFIG === '' ? undefined : env.NOTIFY_CONFIG);
  const file = named === undefined ? undefined : path.resolve(named);
  const fromFile = file === undefined ? { values: {}, problems: [] } : readConfigFile(file, readFile, SETTINGS, namedBy);

  const given: Partial<Record<SettingName, GivenSetting>> = {};
  for (const [key, value] of Object.entries(fromFile.values)) given[key as SettingName] = { value, from: 'file' };
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== '' && Object.hasOwn(SETTINGS, key)) given[key as SettingName] = { value, from: 'environment' };
  }
  const input = Object.fromEntries(Object.entries(given).map(([key, setting]) => [key, setting.value]));
  const parsed = configSchema(readFile).safeParse(input);
  const problems: ConfigProblem[] = [...fromFile.problems];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? 'configuration');
      const origin = given[key as SettingName]?.from === 'file' ? { file: file! } : {};
      problems.push({ key, message: issue.message, ...origin });
    }
  }
  return { config: problems.length === 0 && parsed.success ? parsed.data : undefined, problems, file, given };
}

/**
 * Parses the environment (and the configuration file NOTIFY_CONFIG or `options.file` names) into a `Config`.
 * @param readFile reads the configuration file, ROLES_FILE, ISSUERS_FILE, PRESENCE_FILE and WEBHOOKS_FILE; injected so tests need no file system.
 * @throws ConfigError naming the first bad setting (and the file it came from), with every problem in `problems`.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  readFile: (file: string) => string = () => {
    throw new Error('no file reader');
  },
  options: { readonly file?: string } = {},
): Config {
  const report = inspectConfig({ env, readFile, ...options });
  if (report.config === undefined) {
    const [first] = report.problems;
    throw new ConfigError(first!.key, first!.message, first!.file, report.problems);
  }
  return report.config;
}

/**
 * Reads a configuration file as JSON (`.json`) or YAML (anything else; YAML 1.2 reads JSON too).
 * The `yaml` parser refuses duplicate keys and caps alias expansion, so a file cannot say two
 * things at once or grow into a billion laughs.
 */
function readStructured(file: string, readFile: (file: string) => string): { ok: true; value: unknown } | { ok: false; message: string } {
  let text: string;
  try {
    text = readFile(file);
  } catch (error) {
    return { ok: false, message: `${file} cannot be read (${(error as Error).message})` };
  }
  try {
    return { ok: true, value: file.endsWith('.json') ? JSON.parse(text) : parseYaml(text) };
  } catch (error) {
    const kind = file.endsWith('.json') ? 'JSON' : 'YAML';
    return { ok: false, message: `${file} cannot be read as ${kind} (${(error as Error).message.split('\n')[0]})` };
  }
}
