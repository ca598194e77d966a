import type { AddressInfo, Server as NetServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import { openFileUserStore } from './auth/open-user-store.js';
import { validateRoleTable } from './auth/grants.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { MemoryRefreshTokenStore } from './auth/memory-refresh-token-store.js';
import { createPasswordVerifier } from './auth/password.js';
import { RevocationList } from './auth/revocations.js';
import { loadOrCreateSigningKey } from './auth/signing-key.js';
import { createTokenService, type SigningMaterial, type TokenService } from './auth/token-service.js';
import type { UserStore } from './auth/user-store.js';
import type { EventBus } from './bus/event-bus.js';
import { MemoryBus } from './bus/memory-bus.js';
import type { Config } from './config.js';
import { prepareDataDir } from './fs/data-dir.js';
import { createAuthenticator } from './http/authenticate.js';
import { createListener, type Listener } from './http/listener.js';
import { createCookiePolicy } from './http/cookies.js';
import { createAuthRouter } from './http/routes/auth.js';
import { createDocsRouter } from './http/routes/docs.js';
import { createEventsRouter } from './http/routes/events.js';
import { createHealthRouter } from './http/routes/health.js';
import { createJwksRouter } from './http/routes/jwks.js';
import { createMetricsRouter } from './http/routes/metrics.js';
import { createWebRouter } from './http/routes/web.js';
import { createMetricsListener } from './metrics/metrics-listener.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { connectRedisState } from './redis/redis-state.js';
import { loadWebAssets } from './web/assets.js';
import { DeadlineWheel } from './streams/deadline-wheel.js';
import { SessionRegistry } from './streams/session-registry.js';

export const SPEC_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'openapi.yaml');

/** How often history and refresh-token families are swept of expired entries. */
const MAINTENANCE_INTERVAL_MS = 30_000;

export interface NotifyServer {
  /** The listening server: `http.Server`, or the HTTPS + HTTP/2 server when TLS is configured. */
  readonly http: Listener;
  readonly users: UserStore;
  readonly tokens: TokenService;
  /** The memory bus, or the Redis bus when REDIS_URL is set. */
  readonly bus: EventBus & { sweep(): unknown; readonly historySize: number };
  readonly registry: SessionRegistry;
  readonly revocations: RevocationList;
  readonly metrics: ServerMetrics;
  /** The address of the separate metrics listener (`METRICS=listen`), once listening. */
  metricsAddress(): AddressInfo | undefined;
  /** Every route the server answers, as `{ method, path }` with OpenAPI-style `{param}` paths. */
  readonly routes: ReadonlyArray<{ method: string; path: string }>;
  /** Starts listening; resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /**
   * Graceful shutdown: stop accepting, send every stream a final `closed` event, let in-flight
   * requests finish (up to the grace period), then release everything.
   */
  close(): Promise<void>;
}

/**
 * Builds the whole server on its embedded default: in-memory bus, file user store, a signing key
 * generated into the data directory.
 */
export async function createNotifyServer(config: Config, deps: { logger: Logger; clock?: () => number }): Promise<NotifyServer> {
  const { logger } = deps;
  const clock = deps.clock ?? Date.now;
  validateRoleTable(config.roles);
  await prepareDataDir(config.dataDir);

  const signing: SigningMaterial =
    config.jwt.alg === 'HS256'
      ? { alg: 'HS256', secret: config.jwt.secret! }
      : { alg: config.jwt.alg, ...(await loadOrCreateSigningKey(config.dataDir, config.jwt.alg)) };
  const tokens = await createTokenService({
    signing,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    ttl: config.jwt.accessTokenTtl,
    clockTolerance: config.jwt.clockTolerance,
    clock,
  });
  const users = await openFileUserStore({
    file: config.usersFile,
    onError: (error) => logger.warn({ err: error }, 'user store reload failed'),
  });
  const revocations = new RevocationList({ retentionMs: (config.jwt.accessTokenTtl + config.jwt.clockTolerance) * 1000, clock });
  // Gauges read these at scrape time; `bus` and `registry` are assigned below, before any scrape.
  const metrics = new ServerMetrics({ openStreams: () => registry.size, historyEvents: () => bus.historySize });
  const onDispatch = (delivered: number, elapsedMs: number) => metrics.dispatched(delivered, elapsedMs);
  // With REDIS_URL, events, refresh tokens, revocations and login counters are shared (issue 4).
  const redis = config.redis === undefined ? undefined : await connectRedisState(config, { logger, revocations, clock, onDispatch });
  const refreshTokens =
    redis?.refreshTokens ??
    new MemoryRefreshTokenStore({
      idleTtlMs: config.refreshToken.idleTtl * 1000,
      absoluteTtlMs: config.refreshToken.absoluteTtl * 1000,
      clock,
    });
  const bus =
    redis?.bus ??
    new MemoryBus({
      historySize: config.history.size,
      historyTtlMs: config.history.ttl * 1000,
      maxTopics: config.history.maxTopics,
      idempotencyTtlMs: config.history.idempotencyTtl * 1000,
      idempotencyMaxKeys: config.history.idempotencyMaxKeys,
      clock,
      onDispatch,
    });
  const heartbeatMs = config.streams.heartbeatInterval * 1000;
  const registry = new SessionRegistry({
    maxStreams: config.streams.maxStreams,
    maxStreamsPerSubject: config.streams.maxStreamsPerUser,
    heartbeatMs,
    revocations,
    onSessionEnd: (reason) => metrics.streamEnded(reason),
    onRenew: () => metrics.renewed(),
  });

  const renewals = redis === undefined ? undefined : await redis.startRenewals(registry);

  // A removed account, a new password or new roles end the account's tokens and open streams at once,
  // also when the change comes from the CLI in another process.
  const stopWatching = users.watch((change) => {
    logger.info({ sub: change.name, reason: change.reason }, 'account changed: revoking its tokens');
    if (change.reason !== 'roles_changed') void refreshTokens.revokeSubject(change.name);
    revocations.revokeSubject(change.name, change.reason);
  });

  const deadlines = new DeadlineWheel({ clock });
  const cookies = createCookiePolicy(config.cookieSecure);
  const authenticate = createAuthenticator({ tokens, revocations, cookieNames: cookies.names, allowedOrigins: config.corsOrigins });
  let shuttingDown = false;

  const routers = [
    createHealthRouter({ readiness: () => (shuttingDown ? 'shutting down' : redis?.unavailableReason()) }),
    createJwksRouter({ tokens }),
    createDocsRouter({ specFile: SPEC_FILE }),
    createWebRouter({ assets: loadWebAssets }),
    createMetricsRouter({ metrics, access: config.metrics.access, token: config.metrics.token }),
    createAuthRouter({
      users,
      passwords: createPasswordVerifier({ logN: config.scryptLogN }),
      tokens,
      refreshTokens,
      revocations,
      throttle: new LoginThrottle({
        ...config.login,
        redis: redis === undefined ? undefined : { client: redis.commands, keyPrefix: redis.keyPrefix },
      }),
      roles: config.roles,
      cookies,
      authenticate,
      allowedOrigins: config.corsOrigins,
      maxBodyBytes: config.limits.maxBodyBytes,
      refreshTokenAbsoluteTtl: config.refreshToken.absoluteTtl,
    }),
    createEventsRouter({
      bus,
      registry,
      authenticate,
      session: { retryMs: config.streams.retryMs, heartbeatMs, expiryWarning: config.streams.expiryWarning, clock, deadlines },
      limits: config.limits,
      streamBufferBytes: config.streams.bufferBytes,
      forwardRenewal: renewals === undefined ? undefined : (id, claims) => renewals.forward(id, claims),
      streamSlots: redis?.streamSlots,
    }),
  ];
  const app = createApp({ logger, config, routers, observers: [metrics.observeAuth] });
  const metricsListener = config.metrics.access === 'listen' ? createMetricsListener(metrics) : undefined;
  const routes = routers.flatMap((router) =>
    router.stack.flatMap((layer) =>
      layer.methods
        .filter((method) => method !== 'HEAD')
        .map((method) => ({ method, path: String(layer.path).replace(/:(\w+)/g, '{$1}') })),
    ),
  );

  // HTTP/1.1, or HTTPS with HTTP/2 when a certificate is configured; slowloris timeouts and JSON
  // answers to parser errors either way (http/listener.ts).
  const http = createListener(app.callback(), config.tls);

  const maintenance = setInterval(() => {
    void bus.sweep();
    refreshTokens.sweep();
  }, MAINTENANCE_INTERVAL_MS);
  maintenance.unref();

  return {
    http,
    users,
    tokens,
    bus,
    registry,
    revocations,
    metrics,
    metricsAddress: () => (metricsListener?.listening ? (metricsListener.address() as AddressInfo) : undefined),
    routes,
    async listen() {
      if (metricsListener !== undefined) {
        await listenOn(metricsListener, config.metrics.listen.port, config.metrics.listen.host);
        logger.info({ address: metricsListener.address() }, 'metrics listening');
      }
      return listenOn(http, config.port, config.host);
    },
    async close() {
      if (shuttingDown) return;
      shuttingDown = true;
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      registry.closeAll('shutdown');
      http.closeIdleConnections();
      const grace = setTimeout(() => http.closeAllConnections(), config.streams.shutdownGrace * 1000);
      await closed;
      clearTimeout(grace);
      clearInterval(maintenance);
      stopWatching();
      registry.stop();
      deadlines.stop();
      await bus.close();
      await refreshTokens.close();
      await redis?.close();
      await users.close();
      if (metricsListener?.listening) await new Promise((resolve) => metricsListener.close(resolve));
    },
  };
}

function listenOn(server: NetServer, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
