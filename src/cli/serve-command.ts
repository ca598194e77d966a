import { CliError, singleCommand } from './command.js';
import { CONFIG_HELP, DATA_DIR_HELP, SERVER_OPTIONS, serviceOptions } from './accounts.js';

/**
 * `notify serve`: the server itself, as `npm start` and `node dist/main.js` run it, for an
 * installed package (`npx notify serve`, or `notify serve` installed globally). The configuration
 * is the environment and the configuration file, as for the server (README, "Configuration");
 * `--config` names the file (as NOTIFY_CONFIG does), `--data-dir` sets `DATA_DIR`.
 */
export const serveCommand = singleCommand({
  name: 'serve',
  summary: 'Run the notification server (configured by the environment and --config FILE, as `npm start`).',
  synopsis: '[--config FILE] [--data-dir DIR]',
  description:
    'Listens on HOST:PORT (default 127.0.0.1:3000) until SIGTERM or SIGINT. Every setting (PORT, HOST, DATA_DIR, REDIS_URL, ...: see the README) comes from the environment or the configuration file (--config, or NOTIFY_CONFIG), the environment winning; a bad one stops the server with exit code 78 and a message naming it (and the file). `notify config check` runs the same checks without starting.',
  options: SERVER_OPTIONS,
  optionHelp: [CONFIG_HELP, DATA_DIR_HELP],
  positionals: { min: 0, max: 0 },
  async run({ values }, context) {
    if (context.serve === undefined) throw new CliError('this notify cannot start a server');
    await context.serve(serviceOptions(values));
  },
});
