import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { runPrimary } from './cluster-primary.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createNotifyServer } from './server.js';

/** The entry point: the only module of the server that reads `process.env`. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, (file) => readFileSync(file, 'utf8'));
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`notify: configuration error: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  if (config.workers > 1 && cluster.isPrimary) {
    await runPrimary(config, logger);
    return;
  }
  const server = await createNotifyServer(config, { logger });
  const address = await server.listen();
  logger.info(
    {
      address: `${config.tls === undefined ? 'http' : 'https'}://${address.address}:${address.port}`,
      alg: server.tokens.algorithm,
      dataDir: config.dataDir,
    },
    'listening',
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error) => {
  const badSetting = error instanceof ConfigError; // an unusable file or directory found while starting, too
  process.stderr.write(`notify: ${badSetting ? 'configuration error' : 'failed to start'}: ${(error as Error).message}\n`);
  process.exit(badSetting ? 78 : 1);
});
