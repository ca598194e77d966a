import type { AddressInfo, Server as NetServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import { createAccessTokenVerifier } from './auth/access-token-verifier.js';
import { createExternalTokenVerifier } from './auth/external-token-verifier.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { openFileUserStore } from './auth/open-user-store.js';
import { createPasswordVerifier } from './auth/password.js';
import { RevocationList } from './auth/revocations.js';
import { loadOrCreateSigningKey } from './auth/signing-key.js';
import { withSubjectRevocationRetry } from './auth/subject-revocation-retry.js';
import { createTokenService, type SigningMaterial, type TokenService } from './auth/token-service.js';
import { withVerifiedTokenCache } from './auth/verified-token-cache.js';
import type { UserStore } from './auth/user-store.js';
import type { Backend, BackendDeps } from './backends/backend.js';
import { openMemoryBackend } from './backends/memory/memory-backend.js';
import { openRedisBackend } from './backends/redis/redis-backend.js';
import { openSqliteBackend } from './backends/sqlite/sqlite-backend.js';
import type { EventBus } from './bus/event-bus.js';
import type { Config } from './config.js';
import { prepareDataDir } from './fs/data-dir.js';
import { createAuthenticator } from './http/authenticate.js';
import { createCookiePolicy } from './http/cookies.js';
import { createListener, type Listener } from './http/listener.js';
import { createAdminRouter } from './http/routes/admin.js';
import { createAuthRouter } from './http/routes/auth.js';
import { createDocsRouter } from './http/routes/docs.js';
import { createCorsPolicy } from './http/cors.js';
import { createEventsRouter, createStreamEntry, type EventsRouterDeps } from './http/routes/events.js';
import { createHealthRouter } from './http/routes/health.js';
import { createJwksRouter } from './http/routes/jwks.js';
import { createMetricsRouter } from './http/routes/metrics.js';
import { createPresenceRouter } from './http/routes/presence.js';
import { createTicketRouter } from './http/routes/tickets.js';
import { createWebRouter } from './http/routes/web.js';
import { createTokenExchange } from './http/token-exchange.js';
import { Lifecycle } from './lifecycle.js';
import { createMetricsListener } from './metrics/metrics-listener.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { occupancyTracked, PresenceHub } from './presence/presence-hub.js';
import { DeadlineWheel } from './streams/deadline-wheel.js';
import { renewConnection } from './streams/renew-connection.js';
import { SessionRegistry } from './streams/session-registry.js';
import { loadWebAssets } from './web/assets.js';
import { createWebhookDispatcher } from './webhooks/webhook-dispatcher.js';
import { registerWebhookMetrics } from './webhooks/webhook-metrics.js';
import { systemTimers } from './webhooks/webhook-timers.js';

const SPEC_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'openapi.yaml');

/** How often history and refresh-token families are swept of expired entries, and failed subject revocations retried. */
const MAINTENANCE_INTERVAL_MS = 30_000;
/** Longest wait for any one part to close (the listeners wait for the shutdown grace on top). */
const CLOSE_TIMEOUT_MS = 5000;
/** A backend's connection errors are logged at most this often (each failed reconnect reports one). */
const BACKEND_ERROR_LOG_INTERVAL_MS = 5000;

export interface NotifyServer {
  /** The listening server: `http.Server`, or the HTTPS + HTTP/2 server when TLS is configured. */
  readonly http: Listener;
  readonly users: UserStore;
  readonly tokens: TokenService;
  readonly bus: EventBus;
  readonly registry: SessionRegistry;
  readonly revocations: RevocationList;
  readonly metrics: ServerMetrics;
  /** The address of the separate metrics listener (`METRICS=listen`), once listening. */
  metricsAddress(): AddressInfo | undefined;
  /**
   * One round of the maintenance the server runs every `MAINTENANCE_INTERVAL_MS`: the backend's
   * sweep and the retry of subject revocations the refresh-token store failed. Never rejects.
   */
  maintain(): Promise<void>;
  /** Every route the server answers, as `{ method, path }` with OpenAPI-style `{param}` paths. */
  readonly routes: ReadonlyArray<{ method: string; path: string }>;
  /** Starts listening; resolves with the bound address. A listen that fails closes the server. */
  listen(): Promise<AddressInfo>;
  /**
   * Graceful shutdown: stop accepting, send every stream a final `closed` event, let in-flight
   * requests finish (up to the grace period), then release everything, newest first. Bounded in
   * time, also when the backend is unreachable.
   */
  close(): Promise<void>;
}

/**
 * The composition root: builds every part from the configuration, each registering its closer
 * with one `Lifecycle` as it opens, so `close` mirrors construction and a start that fails
 * halfway releases exactly what it had opened. The backend (SQLite, memory or Redis) is chosen here,
 * once (`openBackend`).
 */
export async function createNotifyServer(config: Config, deps: { logger: Logger; clock?: () => number }): Promise<NotifyServer> {
  const { logger } = deps;
  const clock = deps.clock ?? Date.now;
  /** This process in webhooks and connection records. */
  const instance = `${os.hostname()}/${process.pid}`;
  const lifecycle = new Lifecycle({
    closerTimeoutMs: CLOSE_TIMEOUT_MS,
    onCloseError: (part, error) => logger.warn({ part, err: { message: (error as Error).message } }, 'close failed; going on'),
  });
  return lifecycle.build(async () => {
    await prepareDataDir(config.dataDir);
    const signing: SigningMaterial =
      config.jwt.alg === 'HS256'
        ? { alg: 'HS256', secret: config.jwt.secret! }
        : { alg: config.jwt.alg, ...(await loadOrCreateSigningKey(config.dataDir, config.jwt.alg)) };
    const tokens = await createTokenService({
      signing,
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      ttlMs: config.jwt.accessTokenTtlMs,
      clockToleranceMs: config.jwt.clockToleranceMs,
      clock,
    });
    // Tokens of trusted identity providers (ISSUERS_FILE), verified with their own keys.
    const external = await createExternalTokenVerifier({
      issuers: config.issuers,
      roles: config.roles,
      clock,
      onIssuerStatus: (issuer, reason) =>
        reason === undefined ? logger.info(issuer, 'issuer keys available') : logger.warn({ ...issuer, reason }, 'issuer keys unavailable'),
    });
    // A subject revocation must outlive every token issued before it, ours or an external issuer's.
    const revocations = new RevocationList({
      retentionMs: Math.max(config.jwt.accessTokenTtlMs, external.maxTokenLifetimeMs) + config.jwt.clockToleranceMs,
      clock,
    });
    // Gauges read these at scrape time, never before both exist.
    const metrics = new ServerMetrics({
      openStreams: () => registry.size,
      historyEvents: () => backend.bus.historySize,
      presenceMembers: () => backend.presence.memberCount(),
    });
    const registry = await lifecycle.open(
      'stream registry',
      () =>
        new SessionRegistry({
          maxStreams: config.streams.maxStreams,
          heartbeatMs: config.streams.heartbeatIntervalMs,
          revocations,
          onSessionEnd: (reason) => metrics.streamEnded(reason),
          onRenew: () => metrics.renewed(),
          // Streams are added only once the server listens, when the hub exists.
          observers: [{ started: (session) => presence.started(session), ended: (session, reason) => presence.ended(session, reason) }],
        }),
      (opened) => opened.stop(),
    );
    const backend = await lifecycle.open(
      'backend',
      () =>
        openBackend(config, {
          clock,
          instance,
          revocations,
          localStreams: {
            renewIfHeld: (id, claims) =>
              registry.get(id) === undefined
                ? undefined
                : renewConnection(registry, id, claims, (renewing, topic) => config.presence.policy.access(renewing, topic) === 'allowed'),
          },
          onDispatch: (delivered, elapsedMs) => metrics.dispatched(delivered, elapsedMs),
          onError: rateLimited(BACKEND_ERROR_LOG_INTERVAL_MS, (error) =>
            logger.warn(
              { backend: config.backend.kind, err: { message: error.message, code: (error as NodeJS.ErrnoException).code } },
              'backend',
            ),
          ),
        }),
      (opened) => opened.close(),
    );
    // Lifecycle webhooks: never on the stream path's stack (enqueue only queues); at shutdown they get
    // the grace period to deliver what the closing streams told them.
    const webhooks = createWebhookDispatcher({ targets: config.webhooks.targets, instance, logger });
    lifecycle.onClose(
      'webhook dispatcher',
      () => webhooks.close({ graceMs: config.streams.shutdownGraceMs }),
      config.streams.shutdownGraceMs + CLOSE_TIMEOUT_MS,
    );
    registerWebhookMetrics(metrics.registry, () => webhooks.stats());
    const presence = await lifecycle.open(
      'presence',
      () =>
        new PresenceHub({
          store: backend.presence,
          policy: config.presence.policy,
          leaveDelayMs: config.presence.leaveDelayMs,
          pageSize: config.presence.pageSize,
          webhooks,
          tracksOccupancy: occupancyTracked(config.webhooks.targets),
          clock,
          timers: systemTimers,
          onError: rateLimited(BACKEND_ERROR_LOG_INTERVAL_MS, (error) =>
            logger.warn({ err: { message: error.message } }, 'presence snapshot'),
          ),
        }),
      (opened) => opened.close(),
    );
    // A subject revocation of refresh tokens that fails (a full disk, a Redis outage) is retried on the
    // maintenance timer, and the subject's refreshes are refused until it succeeds.
    const refreshTokens = withSubjectRevocationRetry(backend.refreshTokens, {
      onFailure: (subject, error) =>
        logger.warn(
          { sub: subject, err: { message: (error as Error).message, code: (error as { code?: string }).code } },
          'refresh-token revocation failed: refusing its refreshes, retrying',
        ),
      onRevoked: (subject) => logger.info({ sub: subject }, 'refresh-token revocation retried: done'),
    });
    const users = await lifecycle.open(
      'user store',
      () => openFileUserStore({ file: config.usersFile, onError: (error) => logger.warn({ err: error }, 'user store reload failed') }),
      (opened) => opened.close(),
    );
    // A removed account, a new password or new roles end the account's tokens and open streams at once,
    // also when the change comes from the CLI in another process.
    lifecycle.onClose(
      'account watch',
      users.watch((change) => {
        logger.info({ sub: change.name, reason: change.reason }, 'account changed: revoking its tokens');
        // A failure is logged and retried by `refreshTokens`; the access tokens are refused either way.
        if (change.reason !== 'roles_changed') void refreshTokens.revokeSubject(change.name).catch(() => undefined);
        revocations.revokeSubject(change.name, change.reason);
      }),
    );
    const deadlines = await lifecycle.open(
      'deadline wheel',
      () => new DeadlineWheel({ clock }),
      (opened) => opened.stop(),
    );
    const maintain = async () => {
      await Promise.all([backend.sweep().catch(() => undefined), refreshTokens.retryPending()]);
    };
    const maintenance = setInterval(() => void maintain(), MAINTENANCE_INTERVAL_MS);
    maintenance.unref();
    lifecycle.onClose('maintenance timer', () => clearInterval(maintenance));

    const cookies = createCookiePolicy(config.cookieSecure);
    const cors = createCorsPolicy(config.corsOrigins);
    // Routes authenticate through a cache of verified tokens: a publisher's thousand publishes with one token cost one verification.
    const verifiedTokens = withVerifiedTokenCache(tokens, {
      ttlMs: config.jwt.accessTokenTtlMs,
      clockToleranceMs: config.jwt.clockToleranceMs,
      clock,
    });
    const authenticate = createAuthenticator({
      tokens: createAccessTokenVerifier({ own: verifiedTokens, external }),
      revocations,
      cookieNames: cookies.names,
      allowedOrigins: config.corsOrigins,
    });
    const exchange = createTokenExchange({
      tokens,
      external,
      revocations,
      roles: config.roles,
      tickets: backend.tickets,
      audience: config.jwt.audience,
      issuer: config.jwt.issuer,
      clock,
    });
    let shuttingDown = false;
    const events: EventsRouterDeps = {
      bus: backend.bus,
      registry,
      authenticate,
      session: {
        retryMs: config.streams.retryMs,
        heartbeatMs: config.streams.heartbeatIntervalMs,
        expiryWarningMs: config.streams.expiryWarningMs,
        maxPendingBytes: config.streams.bufferBytes,
        clock,
        deadlines,
        slots: backend.streamSlots,
        onOpen: (session) => presence.open(session),
      },
      limits: config.limits,
      streamBufferBytes: config.streams.bufferBytes,
      renewals: backend.renewals,
      streamSlots: backend.streamSlots,
      cors,
      logger,
      presence: config.presence.policy,
    };
    // The events router first: publishes (the busiest route) find their route without walking the others' first.
    const routers = [
      createEventsRouter(events),
      createHealthRouter({
        readiness: () => (shuttingDown ? 'shutting down' : backend.unavailableReason()),
        degradedIssuers: () => external.degraded(),
      }),
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
        throttle: new LoginThrottle({ ...config.login, counters: backend.attemptCounters }),
        roles: config.roles,
        cookies,
        authenticate,
        allowedOrigins: config.corsOrigins,
        maxBodyBytes: config.limits.maxBodyBytes,
        refreshTokenAbsoluteTtlMs: config.refreshToken.absoluteTtlMs,
        exchange,
      }),
      createAdminRouter({
        users,
        roles: config.roles,
        authenticate,
        revocations,
        refreshTokens,
        scryptLogN: config.scryptLogN,
        maxBodyBytes: config.limits.maxBodyBytes,
      }),
      createTicketRouter({
        tickets: backend.tickets,
        tokens,
        revocations,
        cookies,
        allowedOrigins: config.corsOrigins,
        maxBodyBytes: config.limits.maxBodyBytes,
      }),
      createPresenceRouter({ store: backend.presence, policy: config.presence.policy, authenticate, pageSize: config.presence.pageSize }),
    ];
    const app = createApp({ logger, config, cors, routers, observers: [metrics.observeAuth] });
    const routes = routers.flatMap((router) =>
      router.stack.flatMap((layer) =>
        layer.methods
          .filter((method) => method !== 'HEAD')
          .map((method) => ({ method, path: String(layer.path).replace(/:(\w+)/g, '{$1}') })),
      ),
    );

    // HTTP/1.1, or HTTPS with HTTP/2 when a certificate is configured; slowloris timeouts and JSON
    // answers to parser errors either way (http/listener.ts).
    // `GET /events` is served before Koa (routes/events.ts); everything else, refused streams included, by Koa.
    const serveStream = createStreamEntry(events, app);
    const answer = app.callback();
    const http = createListener((req, res) => serveStream(req, res) || answer(req, res), config.tls);
    const metricsListener = config.metrics.access === 'listen' ? createMetricsListener(metrics) : undefined;
    // Closed first: stop accepting, end every stream with `closed` (`shutdown`), give in-flight
    // requests the grace period, then cut what is left.
    lifecycle.onClose(
      'listeners',
      async () => {
        shuttingDown = true;
        registry.closeAll('shutdown');
        await closeListener(http, config.streams.shutdownGraceMs);
        if (metricsListener !== undefined) await closeListener(metricsListener, 0);
      },
      config.streams.shutdownGraceMs + CLOSE_TIMEOUT_MS,
    );

    return {
      http,
      users,
      tokens,
      bus: backend.bus,
      registry,
      revocations,
      metrics,
      maintain,
      metricsAddress: () => (metricsListener?.listening ? (metricsListener.address() as AddressInfo) : undefined),
      routes,
      async listen() {
        try {
          if (metricsListener !== undefined) {
            await listenOn(metricsListener, config.metrics.listen.port, config.metrics.listen.host);
            logger.info({ address: metricsListener.address() }, 'metrics listening');
          }
          return await listenOn(http, config.port, config.host);
        } catch (error) {
          await lifecycle.close();
          throw error;
        }
      },
      close: () => lifecycle.close(),
    };
  });
}

/** The one place that turns `config.backend` into a backend. */
function openBackend(config: Config, deps: BackendDeps): Promise<Backend> {
  const backend = config.backend;
  switch (backend.kind) {
    case 'sqlite':
      return openSqliteBackend({ ...config, store: backend }, deps);
    case 'memory':
      return Promise.resolve(openMemoryBackend(config, deps));
    case 'redis':
      return openRedisBackend({ ...config, redis: backend }, deps);
  }
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

/**
 * Stops accepting and waits for open connections to end, cutting whatever is still open after
 * `graceMs`. A listener that never listened is closed at once.
 */
async function closeListener(server: Listener | NetServer, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const connections = server as Partial<Pick<Listener, 'closeIdleConnections' | 'closeAllConnections'>>;
  connections.closeIdleConnections?.();
  const grace = setTimeout(() => connections.closeAllConnections?.(), graceMs);
  try {
    await closed;
  } finally {
    clearTimeout(grace);
  }
}

/** Calls `log` at most once per `intervalMs`. */
function rateLimited(intervalMs: number, log: (error: Error) => void): (error: Error) => void {
  let lastLogged = Number.NEGATIVE_INFINITY;
  return (error) => {
    const now = performance.now();
    if (now - lastLogged < intervalMs) return;
    lastLogged = now;
    log(error);
  };
}
