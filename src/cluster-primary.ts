import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { loadOrCreateSigningKey } from './auth/signing-key.js';
import type { Config } from './config.js';

/** A worker that dies after it served is replaced after this pause (not at once: a crash loop must not spin). */
const RESTART_DELAY_MS = 1000;

/**
 * `WORKERS=N` (issue 4): the primary process forks N workers that share one listening port
 * (node:cluster hands connections out round-robin) and, through Redis, every event and every
 * piece of shared state, so any worker can serve any request. It serves nothing itself. One
 * process here may hold about 20,000 open files; N workers hold N times as many streams.
 *
 * A worker that exits before it ever listened means the configuration or Redis is wrong: the
 * primary stops them all and exits with an error instead of restarting them forever. A worker
 * that dies later is replaced. SIGTERM/SIGINT is passed on, and the primary exits when all
 * workers have.
 */
export async function runPrimary(config: Config, logger: Logger): Promise<void> {
  // One signing key for every worker: create it here, before any worker races to.
  if (config.jwt.alg !== 'HS256') await loadOrCreateSigningKey(config.dataDir, config.jwt.alg);
  const listened = new WeakSet<Worker>();
  let stopping = false;

  const stop = (signal: NodeJS.Signals, code: number) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping workers');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    const force = setTimeout(() => process.exit(code || 1), config.streams.shutdownGraceMs + 5000);
    force.unref();
    const check = () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(code);
    };
    cluster.on('exit', check);
    check();
  };

  cluster.on('listening', (worker) => listened.add(worker));
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    if (!listened.has(worker)) {
      logger.fatal({ pid: worker.process.pid, code, signal }, 'a worker failed to start; stopping');
      stop('SIGTERM', 1);
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting another');
    setTimeout(() => {
      if (!stopping) cluster.fork();
    }, RESTART_DELAY_MS);
  });
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  for (let i = 0; i < config.workers; i++) cluster.fork();
  logger.info({ workers: config.workers, port: config.port }, 'primary started');
}
