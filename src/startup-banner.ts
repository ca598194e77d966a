import path from 'node:path';

/** What the start-up banner tells a person at a terminal. */
export interface BannerFacts {
  /** The server's base URL, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  /** The URL clients should use, when it differs (PUBLIC_ORIGIN). */
  readonly publicOrigin?: string;
  readonly usersFile: string;
  readonly dataDir: string;
  /** Accounts in the user file by kind. */
  readonly users: number;
  readonly clients: number;
  /** The configuration file read, if any. */
  readonly configFile?: string;
  /** How tokens are signed (`EdDSA`, `ES256`, `HS256`). */
  readonly alg: string;
  /** Redis or the embedded default. */
  readonly backend: string;
}

/**
 * The lines printed once the server listens, in `pretty` log format (a terminal): where it is,
 * where its documentation and demo page are, which user file it reads, and, on a first run
 * with no account, the command that adds one. Plain text, no colour: it is read, not parsed
 * (the JSON `listening` log line is for tools).
 */
export function startupBanner(facts: BannerFacts): string {
  const base = facts.publicOrigin ?? facts.url;
  const rows: Array<[string, string]> = [
    [
      'listening',
      facts.url + (facts.publicOrigin !== undefined && facts.publicOrigin !== facts.url ? ` (public: ${facts.publicOrigin})` : ''),
    ],
    ['API docs', `${base}/docs`],
    ['demo page', `${base}/`],
    ['user file', `${facts.usersFile} (${count(facts.users, 'user')}, ${count(facts.clients, 'service client')})`],
    ['config', facts.configFile ?? 'environment only (no --config or NOTIFY_CONFIG)'],
    ['tokens', `${facts.alg}, on the ${facts.backend} backend`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = ['', 'notify is running', ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)];
  if (facts.users + facts.clients === 0) {
    // The CLI must find the same user file: name it (a CLI run elsewhere would not find ./data).
    const command =
      facts.configFile !== undefined
        ? `notify users add NAME --role user --config ${facts.configFile}`
        : facts.usersFile === path.join(facts.dataDir, 'users.json')
          ? `notify users add NAME --role user --data-dir ${facts.dataDir}`
          : `USERS_FILE=${facts.usersFile} notify users add NAME --role user`;
    lines.push('', `No accounts yet: \`${command}\` adds one (it asks for the password).`);
  }
  lines.push('', 'Stop with Ctrl-C (streams get a `closed` event first).', '');
  return lines.join('\n');
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
