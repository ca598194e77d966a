import path from 'node:path';
import { z } from 'zod';
import { delegationSchema, permissionsSchema } from './auth/delegation.js';
import { IssuerConfigError, loadIssuersFile, type IssuerConfig } from './auth/issuer-config.js';

/**
 * The whole configuration, parsed and checked once at start from environment variables (only the
 * entry points read `process.env`), then passed in. A bad value stops the server with a message
 * that names the variable. Every default is chosen to be safe; README.md's table says why.
 */

/** A whole number written plainly: no blanks, no `0x50`, no `1e3` (z.coerce would take all three). */
const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d{1,16}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
const seconds = int;
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');
const csv = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0),
);

const envSchema = z.object({
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('./data'),
  USERS_FILE: z.string().min(1).optional(),
  ROLES_FILE: z.string().min(1).optional(),
  ISSUERS_FILE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TRUST_PROXY: bool.default(false),
  PUBLIC_ORIGIN: z.url().optional(),
  CORS_ORIGINS: csv.default([]),
  COOKIE_SECURE: z.enum(['auto', 'true', 'false']).default('auto'),
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),

  JWT_ALG: z.enum(['EdDSA', 'ES256', 'HS256']).default('EdDSA'),
  JWT_SECRET: z.string().optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).default('notify'),
  ACCESS_TOKEN_TTL: seconds(10, 3600).default(300),
  REFRESH_TOKEN_IDLE_TTL: seconds(60, 90 * 86400).default(86400),
  REFRESH_TOKEN_ABSOLUTE_TTL: seconds(60, 365 * 86400).default(30 * 86400),
  CLOCK_TOLERANCE: seconds(0, 60).default(5),

  SCRYPT_LOG_N: int(10, 20).default(17),
  LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS: int(1, 1000).default(10),
  LOGIN_MAX_PER_ADDRESS: int(1, 100000).default(100),
  LOGIN_MAX_PER_ACCOUNT: int(1, 100000).default(50),
  LOGIN_WINDOW: seconds(1, 86400).default(900),

  MAX_BODY_BYTES: int(1024, 16 * 1024 * 1024).default(64 * 1024),
  MAX_DATA_BYTES: int(16, 16 * 1024 * 1024).default(32 * 1024),
  MAX_TOPICS_PER_REQUEST: int(1, 256).default(16),

  HEARTBEAT_INTERVAL: seconds(0, 3600).default(15),
  EXPIRY_WARNING: seconds(1, 3600).default(60),
  RETRY_MS: int(0, 600000).default(3000),
  STREAM_BUFFER_BYTES: int(4096, 64 * 1024 * 1024).default(1024 * 1024),
  MAX_STREAMS: int(1, 10_000_000).default(100_000),
  MAX_STREAMS_PER_USER: int(1, 100_000).default(16),
  SHUTDOWN_GRACE: seconds(0, 600).default(10),

  HISTORY_SIZE: int(0, 1_000_000).default(1000),
  HISTORY_TTL: seconds(1, 30 * 86400).default(3600),
  HISTORY_MAX_TOPICS: int(1, 10_000_000).default(10_000),
  IDEMPOTENCY_TTL: seconds(1, 7 * 86400).default(86400),
  IDEMPOTENCY_MAX_KEYS: int(0, 10_000_000).default(100_000),

  // Scale-out (issue 4): with REDIS_URL every shared piece of state lives in Redis.
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/)
    .default('notify:'),
  REDIS_STREAM_MAXLEN: int(1000, 100_000_000).default(100_000),
  WORKERS: int(1, 256).default(1),
  METRICS: z.enum(['off', 'token', 'listen']).default('off'),
  METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters (generate one with `openssl rand -base64 32`)').max(1024).optional(),
  METRICS_LISTEN: z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'must be host:port')
    .default('127.0.0.1:9464'),
});

/** The role table: role name -> topic selectors it may publish to and subscribe to. */
const rolesSchema = z.record(
  z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/),
  z
    .object({
      publish: z.array(z.string().min(1).max(300)).max(64).default([]),
      subscribe: z.array(z.string().min(1).max(300)).max(64).default([]),
      /** Issue 10: what a service client may mint for others, and what else it may do (`auth/delegation.ts`). */
      delegate: delegationSchema.optional(),
      permissions: permissionsSchema.optional(),
    })
    .strict(),
);
export type RoleTable = z.infer<typeof rolesSchema>;

/**
 * The embedded default roles. `{sub}` is the account name, so every account has a private
 * inbox under `users/{sub}/`. Publishers may write to any inbox and to public topics.
 */
export const DEFAULT_ROLES: RoleTable = {
  user: { publish: [], subscribe: ['users/{sub}/**', 'public/**'] },
  publisher: { publish: ['public/**', 'users/*/**'], subscribe: ['public/**'] },
  admin: { publish: ['**'], subscribe: ['**'] },
};

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly usersFile: string;
  readonly roles: RoleTable;
  /** Trusted external issuers (ISSUERS_FILE, issue 10); empty when not set. */
  readonly issuers: readonly IssuerConfig[];
  readonly logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  readonly trustProxy: boolean;
  readonly publicOrigin: string | undefined;
  readonly corsOrigins: readonly string[];
  readonly cookieSecure: 'auto' | boolean;
  /** PEM certificate chain and private key: HTTPS with HTTP/2 (and HTTP/1.1 fallback) on PORT. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  readonly jwt: {
    readonly alg: 'EdDSA' | 'ES256' | 'HS256';
    readonly secret: Uint8Array | undefined;
    readonly issuer: string;
    readonly audience: string;
    readonly accessTokenTtl: number;
    readonly clockTolerance: number;
  };
  readonly refreshToken: { readonly idleTtl: number; readonly absoluteTtl: number };
  readonly scryptLogN: number;
  readonly login: {
    readonly maxPerAccountAndAddress: number;
    readonly maxPerAddress: number;
    readonly maxPerAccount: number;
    readonly window: number;
  };
  readonly limits: {
    readonly maxBodyBytes: number;
    readonly maxDataBytes: number;
    readonly maxTopicsPerRequest: number;
  };
  readonly streams: {
    readonly heartbeatInterval: number;
    readonly expiryWarning: number;
    readonly retryMs: number;
    readonly bufferBytes: number;
    readonly maxStreams: number;
    readonly maxStreamsPerUser: number;
    readonly shutdownGrace: number;
  };
  readonly history: {
    readonly size: number;
    readonly ttl: number;
    readonly maxTopics: number;
    readonly idempotencyTtl: number;
    readonly idempotencyMaxKeys: number;
  };
  /** Set when REDIS_URL is: the Redis bus and shared state instead of the embedded default. */
  readonly redis:
    | {
        readonly url: string;
        readonly keyPrefix: string;
        /** Events kept in the global stream, over all topics. */
        readonly streamMaxLen: number;
      }
    | undefined;
  /** Processes serving the port (node:cluster); more than one needs Redis. */
  readonly workers: number;
  /** `GET /metrics`: off, behind a bearer token on the main port, or on a separate address. */
  readonly metrics: {
    readonly access: 'off' | 'token' | 'listen';
    readonly token: string | undefined;
    readonly listen: { readonly host: string; readonly port: number };
  };
}

/** A configuration value that cannot be used; `key` names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (32 bytes). */
export const MIN_HMAC_SECRET_BYTES = 32;
/**
 * 32 random bytes hold about 30 distinct values (fewer than 16 happens with probability far below
 * 2^-40), so fewer distinct bytes than this means a secret typed or repeated by a person.
 */
export const MIN_HMAC_SECRET_DISTINCT_BYTES = 16;

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
    Object.entries(env).filter(([key, value]) => value !== undefined && value !== '' && Object.hasOwn(envSchema.shape, key)),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message);
  }
  const e = parsed.data;

  let secret: Uint8Array | undefined;
  if (e.JWT_ALG === 'HS256') {
    if (e.JWT_SECRET === undefined) throw new ConfigError('JWT_SECRET', 'is required when JWT_ALG=HS256');
    secret = decodeSecret(e.JWT_SECRET);
    // A long secret with few distinct bytes ('aaaa...', a repeated word) is not random: refuse it too.
    if (secret.length < MIN_HMAC_SECRET_BYTES || new Set(secret).size < MIN_HMAC_SECRET_DISTINCT_BYTES) {
      throw new ConfigError(
        'JWT_SECRET',
        `must hold at least ${MIN_HMAC_SECRET_BYTES} random bytes (give it as base64url, base64 or hex); generate one with \`openssl rand -base64 32\``,
      );
    }
  } else if (e.JWT_SECRET !== undefined) {
    throw new ConfigError('JWT_SECRET', `is only used with JWT_ALG=HS256 (JWT_ALG is ${e.JWT_ALG})`);
  }
  if ((e.TLS_CERT_FILE === undefined) !== (e.TLS_KEY_FILE === undefined)) {
    throw new ConfigError(e.TLS_CERT_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE', 'TLS_CERT_FILE and TLS_KEY_FILE go together');
  }
  if (e.REFRESH_TOKEN_ABSOLUTE_TTL < e.REFRESH_TOKEN_IDLE_TTL) {
    throw new ConfigError('REFRESH_TOKEN_ABSOLUTE_TTL', 'must not be shorter than REFRESH_TOKEN_IDLE_TTL');
  }
  if (e.MAX_DATA_BYTES > e.MAX_BODY_BYTES) {
    throw new ConfigError('MAX_DATA_BYTES', 'must not be larger than MAX_BODY_BYTES');
  }

  if (e.WORKERS > 1 && e.REDIS_URL === undefined) {
    throw new ConfigError('WORKERS', 'more than one worker needs REDIS_URL (workers share events and state through Redis)');
  }
  if (e.METRICS === 'token' && e.METRICS_TOKEN === undefined) throw new ConfigError('METRICS_TOKEN', 'is required when METRICS=token');
  const metricsColon = e.METRICS_LISTEN.lastIndexOf(':');
  const metricsPort = Number(e.METRICS_LISTEN.slice(metricsColon + 1));
  if (metricsPort > 65535) throw new ConfigError('METRICS_LISTEN', 'port must be at most 65535');

  let roles = DEFAULT_ROLES;
  if (e.ROLES_FILE !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFile(e.ROLES_FILE));
    } catch (error) {
      throw new ConfigError('ROLES_FILE', `cannot be read as JSON (${(error as Error).message})`);
    }
    const result = rolesSchema.safeParse(raw);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      throw new ConfigError('ROLES_FILE', `${issue.path.join('.')}: ${issue.message}`);
    }
    roles = result.data;
  }

  const issuer = e.JWT_ISSUER ?? e.PUBLIC_ORIGIN ?? `http://${e.HOST}:${e.PORT}`;
  let issuers: IssuerConfig[] = [];
  try {
    if (e.ISSUERS_FILE !== undefined)
      issuers = loadIssuersFile(e.ISSUERS_FILE, { readFile, knownRoles: Object.keys(roles), ownIssuer: issuer });
  } catch (error) {
    throw error instanceof IssuerConfigError ? new ConfigError('ISSUERS_FILE', error.message) : error;
  }

  const dataDir = path.resolve(e.DATA_DIR);
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir,
    usersFile: path.resolve(dataDir, e.USERS_FILE ?? 'users.json'),
    roles,
    issuers,
    logLevel: e.LOG_LEVEL,
    trustProxy: e.TRUST_PROXY,
    publicOrigin: e.PUBLIC_ORIGIN,
    corsOrigins: e.CORS_ORIGINS,
    cookieSecure: e.COOKIE_SECURE === 'auto' ? 'auto' : e.COOKIE_SECURE === 'true',
    tls:
      e.TLS_CERT_FILE === undefined || e.TLS_KEY_FILE === undefined
        ? undefined
        : { certFile: path.resolve(e.TLS_CERT_FILE), keyFile: path.resolve(e.TLS_KEY_FILE) },
    jwt: {
      alg: e.JWT_ALG,
      secret,
      issuer,
      audience: e.JWT_AUDIENCE,
      accessTokenTtl: e.ACCESS_TOKEN_TTL,
      clockTolerance: e.CLOCK_TOLERANCE,
    },
    refreshToken: { idleTtl: e.REFRESH_TOKEN_IDLE_TTL, absoluteTtl: e.REFRESH_TOKEN_ABSOLUTE_TTL },
    scryptLogN: e.SCRYPT_LOG_N,
    login: {
      maxPerAccountAndAddress: e.LOGIN_MAX_PER_ACCOUNT_AND_ADDRESS,
      maxPerAddress: e.LOGIN_MAX_PER_ADDRESS,
      maxPerAccount: e.LOGIN_MAX_PER_ACCOUNT,
      window: e.LOGIN_WINDOW,
    },
    limits: {
      maxBodyBytes: e.MAX_BODY_BYTES,
      maxDataBytes: e.MAX_DATA_BYTES,
      maxTopicsPerRequest: e.MAX_TOPICS_PER_REQUEST,
    },
    streams: {
      heartbeatInterval: e.HEARTBEAT_INTERVAL,
      expiryWarning: e.EXPIRY_WARNING,
      retryMs: e.RETRY_MS,
      bufferBytes: e.STREAM_BUFFER_BYTES,
      maxStreams: e.MAX_STREAMS,
      maxStreamsPerUser: e.MAX_STREAMS_PER_USER,
      shutdownGrace: e.SHUTDOWN_GRACE,
    },
    history: {
      size: e.HISTORY_SIZE,
      ttl: e.HISTORY_TTL,
      maxTopics: e.HISTORY_MAX_TOPICS,
      idempotencyTtl: e.IDEMPOTENCY_TTL,
      idempotencyMaxKeys: e.IDEMPOTENCY_MAX_KEYS,
    },
    redis: e.REDIS_URL === undefined ? undefined : { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX, streamMaxLen: e.REDIS_STREAM_MAXLEN },
    workers: e.WORKERS,
    metrics: {
      access: e.METRICS,
      token: e.METRICS_TOKEN,
      listen: { host: e.METRICS_LISTEN.slice(0, metricsColon).replace(/^\[|\]$/g, ''), port: metricsPort },
    },
  };
}

function decodeSecret(value: string): Uint8Array {
  if (/^[0-9a-fA-F]+$/.test(value) && value.length % 2 === 0) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9_-]+$/.test(value)) return Buffer.from(value, 'base64url');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return Buffer.from(value, 'base64');
  return Buffer.from(value, 'utf8');
}
