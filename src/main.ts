import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runPrimary } from './cluster-primary.js';
import { preflight } from './config-checks.js';
import { ConfigError, describeBackend, describeProblem } from './config.js';
import { createLogger, resolveLogFormat } from './logger.js';
import { createNotifyServer } from './server.js';
import { startupBanner } from './startup-banner.js';

const USAGE = 'Usage: node dist/main.js [--config FILE]   (or `notify serve [--config FILE]`)';

/**
 * `--config FILE` when this module is the program (`node dist/main.js --config FILE`). Imported by
 * `notify serve`, the command line is the CLI's: it has read its own options (and set
 * NOTIFY_CONFIG and DATA_DIR from them).
 */
function configFileArgument(): string | undefined {
  const program = process.argv[1];
  if (program === undefined || path.resolve(program) !== fileURLToPath(import.meta.url)) return undefined;
  try {
    const { values } = parseArgs({ args: process.argv.slice(2), options: { config: { type: 'string' } }, strict: true });
    if (values.config === '') throw new Error('--config needs a file');
    return values.config;
  } catch (error) {
    process.stderr.write(`notify: ${(error as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}

/** The entry point: the only module of the server that reads `process.env`. */
async function main(): Promise<void> {
  const configFile = configFileArgument();
  // The same checks as `notify config check`: every bad setting and unusable file, each named, at once.
  // A cluster worker checks the settings only: its primary has checked the files.
  const checked = await preflight(
    { env: process.env, readFile: (file) => readFileSync(file, 'utf8'), ...(configFile === undefined ? {} : { file: configFile }) },
    { files: cluster.isPrimary },
  );
  const errors = checked.findings.filter((finding) => finding.level === 'error');
  if (errors.length > 0) {
    for (const error of errors) process.stderr.write(`notify: configuration error: ${describeProblem(error)}\n`);
    if (errors.length > 1)
      process.stderr.write(
        `notify: ${errors.length} configuration errors (\`notify config check\` shows them with the effective configuration)\n`,
      );
    process.exit(78); // EX_CONFIG
  }
  const config = checked.report.config!;
  const format = resolveLogFormat(config.logFormat, process.stdout.isTTY === true);
  const logger = createLogger(config.logLevel, undefined, format);
  for (const warning of checked.findings.filter((finding) => finding.level === 'warning')) {
    logger.warn({ setting: warning.key, ...(warning.file === undefined ? {} : { file: warning.file }) }, warning.message);
  }
  if (config.workers > 1 && cluster.isPrimary) {
    await runPrimary(config, logger);
    return;
  }
  const server = await createNotifyServer(config, { logger });
  const address = await server.listen();
  const url = `${config.tls === undefined ? 'http' : 'https'}://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  const accounts = await server.users.list();
  const users = accounts.filter((account) => account.kind === 'user').length;
  const facts = {
    url,
    usersFile: config.usersFile,
    dataDir: config.dataDir,
    users,
    clients: accounts.length - users,
    alg: server.tokens.algorithm,
    backend: describeBackend(config.backend),
    ...(config.publicOrigin === undefined ? {} : { publicOrigin: config.publicOrigin }),
    ...(checked.report.file === undefined ? {} : { configFile: checked.report.file }),
  };
  if (format === 'pretty' && cluster.isPrimary) {
    process.stdout.write(startupBanner(facts));
  } else {
    // Tools and tests parse this line (its `address`); keep its shape.
    logger.info(
      {
        address: url,
        alg: facts.alg,
        dataDir: config.dataDir,
        usersFile: config.usersFile,
        accounts: accounts.length,
        docs: `${facts.publicOrigin ?? url}/docs`,
        ...(facts.configFile === undefined ? {} : { config: facts.configFile }),
      },
      'listening',
    );
  }

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
