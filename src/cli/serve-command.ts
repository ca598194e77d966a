import { CliError, singleCommand } from './command.js';
import { DATA_DIR_HELP, DATA_DIR_OPTION, serviceOptions } from './accounts.js';

/**
 * `notify serve`: the server itself, as `npm start` and `node dist/main.js` run it, for an
 * installed package (`npx notify serve`, or `notify serve` installed globally). The configuration
 * is the environment, as for the server (README, "Configuration"); `--data-dir` sets `DATA_DIR`.
 */
export const serveCommand = singleCommand({
  name: 'serve',
  summary: 'Run the notification server (configured by the environment, as `npm start`).',
  synopsis: '[--data-dir DIR]',
  description:
    'Listens on HOST:PORT (default 127.0.0.1:3000) until SIGTERM or SIGINT. Every setting comes from the environment (PORT, HOST, DATA_DIR, REDIS_URL, ...: see the README); a bad one stops the server with exit code 78 and a message naming it.',
  options: DATA_DIR_OPTION,
  optionHelp: [DATA_DIR_HELP],
  positionals: { min: 0, max: 0 },
  async run({ values }, context) {
    if (context.serve === undefined) throw new CliError('this notify cannot start a server');
    await context.serve(serviceOptions(values));
  },
});
