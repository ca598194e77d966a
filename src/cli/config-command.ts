import { maskSecrets, maskSetting, preflight, type Finding, type Preflight } from '../config-checks.js';
import { describeBackend, describeProblem, SETTINGS, type SettingDoc, type SettingName } from '../config.js';
import { CliError, commandGroup, flag, table, UsageError } from './command.js';

/** Exit code of a configuration the server would refuse (EX_CONFIG, as the server's own). */
const EXIT_CONFIG = 78;

/**
 * `notify config check`: the effective configuration (environment over file over default, secrets
 * masked) and every problem found by the same checks the server runs before it starts
 * (`config-checks.ts`). Exit code 0 when the server would start, 78 when it would not.
 */
export const configCommand = commandGroup('config', 'Check the configuration the server would run with.', [
  {
    name: 'check',
    summary: 'Print the effective configuration (secrets masked) and every problem; exit 78 on an error.',
    synopsis: '[--config FILE] [--json]',
    description:
      "Reads the configuration as the server does (the environment, and the file named by --config or NOTIFY_CONFIG; a variable that is set overrides the file), then runs the server's start-up checks without starting it or changing anything: every setting, the data directory (writable, or creatable), the user file, the signing key (its type must fit JWT_ALG), the TLS certificate and key (loaded, matching, in their validity), ROLES_FILE and ISSUERS_FILE. Exit code 0 when the server would start, 78 when it would not.",
    options: { config: { type: 'string' }, json: { type: 'boolean' } },
    optionHelp: [
      ['--config FILE', 'the configuration file (default: $NOTIFY_CONFIG, or none)'],
      ['--json', 'one JSON document: settings, what the files hold, problems'],
    ],
    positionals: { min: 0, max: 0 },
    async run({ values }, context) {
      const file = values.config;
      if (file === '') throw new UsageError('--config needs a file', 'notify config check');
      let checked: Preflight;
      try {
        checked = await preflight({ env: context.env, readFile: context.readFile, ...(typeof file === 'string' ? { file } : {}) });
      } catch (error) {
        throw new CliError(`the configuration could not be checked: ${(error as Error).message}`);
      }
      context.stdout.write(flag(values.json) ? `${JSON.stringify(asJson(checked), null, 2)}\n` : asText(checked));
      return checked.findings.some((finding) => finding.level === 'error') ? EXIT_CONFIG : 0;
    },
  },
]);

interface ShownSetting {
  readonly name: SettingName;
  /** As given (masked), or the default. */
  readonly value: string;
  readonly from: 'environment' | 'file' | 'default';
}

function settings(checked: Preflight): ShownSetting[] {
  return (Object.keys(SETTINGS) as SettingName[]).map((name) => {
    const given = checked.report.given[name];
    if (given !== undefined) return { name, value: maskSetting(name, given.value), from: given.from };
    // A file entry that could not be taken at all (a nested object, a number for text) is not among the given ones.
    if (checked.report.problems.some((problem) => problem.key === name && problem.file !== undefined)) {
      return { name, value: '(refused: see the problems)', from: 'file' };
    }
    const doc = SETTINGS[name].meta() as SettingDoc | undefined;
    return { name, value: (doc?.defaultText ?? doc?.default ?? 'unset').replaceAll('`', ''), from: 'default' };
  });
}

/** What the files named by the settings hold, as far as the checks could read them. */
function contents(checked: Preflight): Array<[string, string]> {
  const { config } = checked.report;
  const { state } = checked;
  if (config === undefined || state === undefined) return [];
  const rows: Array<[string, string]> = [];
  rows.push(['data directory', `${config.dataDir}${state.dataDir === 'missing' ? ' (does not exist yet: created at start)' : ''}`]);
  const accounts = state.accounts;
  rows.push([
    'user file',
    accounts === undefined
      ? config.usersFile
      : `${config.usersFile}: ${accounts.users} user${accounts.users === 1 ? '' : 's'}, ${accounts.clients} service client${accounts.clients === 1 ? '' : 's'}` +
        (accounts.users + accounts.clients === 0 ? ' (add one with `notify users add NAME --role user`)' : ''),
  ]);
  if (config.jwt.alg === 'HS256') rows.push(['signing', 'HS256 with JWT_SECRET']);
  else if (state.signingKey !== undefined) {
    rows.push([
      'signing key',
      `${state.signingKey.file} (${config.jwt.alg}${state.signingKey.exists ? '' : ', generated at first start'})`,
    ]);
  }
  if (state.tls !== undefined) rows.push(['TLS certificate', `${state.tls.subject}, valid until ${state.tls.validTo}`]);
  rows.push(['roles', `${Object.keys(config.roles).join(', ')}${checked.report.given.ROLES_FILE === undefined ? ' (built in)' : ''}`]);
  for (const issuer of config.issuers) {
    const keys = issuer.keys.kind === 'jwks_uri' ? issuer.keys.url : issuer.keys.kind;
    rows.push([
      `issuer ${issuer.alias}`,
      `${issuer.issuer} (${issuer.algorithms.join(', ')}; keys: ${keys}; as ${issuer.acceptAs.join(', ')})`,
    ]);
  }
  rows.push([
    'backend',
    config.backend.kind === 'redis' ? `Redis ${maskSetting('REDIS_URL', config.backend.url)}` : describeBackend(config.backend),
  ]);
  return rows;
}

function asText(checked: Preflight): string {
  const { report, findings } = checked;
  const lines = [
    report.file === undefined
      ? 'Configuration: the environment and the defaults (no configuration file: --config or NOTIFY_CONFIG)'
      : `Configuration: the environment, then ${report.file}, then the defaults`,
    '',
    'Settings:',
    ...table(settings(checked).map((shown) => [shown.name, `${shown.value}${shown.from === 'default' ? '' : `   [${shown.from}]`}`])),
  ];
  const files = contents(checked);
  if (files.length > 0) lines.push('', 'Files and what they hold:', ...table(files));
  if (report.config === undefined) lines.push('', 'The files the settings name are checked once the settings are right.');
  lines.push('');
  if (findings.length === 0) {
    lines.push('No problems found: the server would start with this configuration.');
  } else {
    lines.push('Problems:', ...findings.map((finding) => `  ${finding.level.padEnd(7)}  ${describeProblem(finding)}`), '');
    const errors = findings.filter((finding) => finding.level === 'error').length;
    const warnings = findings.length - errors;
    const counted = [errors > 0 ? plural(errors, 'error') : '', warnings > 0 ? plural(warnings, 'warning') : ''].filter(Boolean).join(', ');
    lines.push(errors > 0 ? `${counted}: the server would not start (exit code ${EXIT_CONFIG}).` : `${counted}: the server would start.`);
  }
  return `${lines.join('\n')}\n`;
}

function asJson(checked: Preflight): unknown {
  const { config } = checked.report;
  return {
    file: checked.report.file ?? null,
    settings: Object.fromEntries(settings(checked).map((shown) => [shown.name, { value: shown.value, from: shown.from }])),
    files: Object.fromEntries(contents(checked)),
    // Only what a reader needs, with secrets of any file's contents masked (issuer entries hold public keys only today).
    issuers:
      config === undefined
        ? []
        : maskSecrets(config.issuers.map(({ alias, issuer, algorithms, acceptAs }) => ({ alias, issuer, algorithms, acceptAs }))),
    problems: checked.findings.map((finding: Finding) => ({
      level: finding.level,
      key: finding.key,
      ...(finding.file === undefined ? {} : { file: finding.file }),
      message: finding.message,
    })),
    starts: !checked.findings.some((finding) => finding.level === 'error'),
  };
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
