import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadIssuersFile } from '../../src/auth/issuer-config.js';
import type { Config } from '../../src/config.js';
import { startServer, type TestServer } from './server.js';

/**
 * Starts a test server with an ISSUERS_FILE holding `issuers`, written to a temporary directory and
 * parsed by the same loader the server's configuration uses (the test config loader has no file
 * reader, so the parsed issuers are set on the config).
 */
export async function startServerWithIssuers(
  issuers: unknown[],
  env: Record<string, string> = {},
  overrides: (config: Config) => Config = (c) => c,
): Promise<TestServer & { issuersFile: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'notify-issuers-'));
  const issuersFile = path.join(dir, 'issuers.json');
  writeFileSync(issuersFile, JSON.stringify({ issuers }, null, 2));
  const t = await startServer(env, (config) => {
    const edited = overrides(config);
    return {
      ...edited,
      issuers: loadIssuersFile(issuersFile, {
        readFile: (file) => readFileSync(file, 'utf8'),
        knownRoles: Object.keys(edited.roles),
        ownIssuer: edited.jwt.issuer,
      }),
    };
  });
  return {
    ...t,
    issuersFile,
    async close() {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The default roles plus the two that issue 10 adds powers to: `app`, a backend that may mint
 * tokens for its users (each user's own inbox and public topics), and `ops`, which may manage
 * accounts and revoke subjects.
 */
export const DELEGATION_ROLES: Config['roles'] = {
  user: { publish: [], subscribe: ['users/{sub}/**', 'public/**'], presence: [] },
  publisher: { publish: ['public/**', 'users/*/**'], subscribe: ['public/**'], presence: [] },
  admin: { publish: ['**'], subscribe: ['**'], presence: [] },
  app: {
    publish: ['users/*/**', 'public/**'],
    subscribe: [],
    presence: [],
    delegate: { publish: [], subscribe: ['users/{sub}/**', 'public/**'] },
  },
  ops: { publish: [], subscribe: [], presence: [], permissions: ['manage_accounts', 'revoke_subjects'] },
};
