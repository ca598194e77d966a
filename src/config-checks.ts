import { X509Certificate } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { openFileUserStore } from './auth/open-user-store.js';
import { checkSigningKey } from './auth/signing-key.js';
import { ConfigError, inspectConfig, type Config, type ConfigReport, type ConfigSources } from './config.js';
import { checkDataDir } from './fs/data-dir.js';
import { loadTlsCredentials } from './http/tls-credentials.js';

/**
 * The checks of the files and directories a configuration names, run by `notify config check`
 * and by the server before it starts (the same module, so the two cannot disagree). The settings
 * themselves are checked by the schema (`config.ts`); these need the file system: the data
 * directory can be written (or created), the user file and the signing key are what they should
 * be, the TLS pair loads, matches and is within its validity. Nothing is created or changed.
 * Every check runs, so every problem is reported at once; each names its setting and file.
 */

/** One result of a check: an error stops the server (exit code 78); a warning is logged. */
export interface Finding {
  readonly level: 'error' | 'warning';
  /** The setting the finding is about (`TLS_CERT_FILE`, `DATA_DIR`, ...). */
  readonly key: string;
  readonly message: string;
  /** The configuration file the setting was read from; absent for the environment. */
  readonly file?: string;
}

/** The whole check of a configuration: its settings, then (when they parse) the files they name. */
export interface Preflight {
  readonly report: ConfigReport;
  /** Absent when the settings do not parse (the files are checked once they do) or the files were not checked. */
  readonly state: ConfigurationState | undefined;
  /** Every problem: the settings' first, then the files'. An error means the server must not start. */
  readonly findings: readonly Finding[];
}

/**
 * Reads the configuration and runs every check: what `notify config check` prints and what the
 * server runs before it starts.
 * @param options.files `false` to check the settings only (a cluster worker, whose primary checked the files).
 */
export async function preflight(
  sources: ConfigSources,
  options: { readonly files?: boolean; readonly clock?: () => number } = {},
): Promise<Preflight> {
  const report = inspectConfig(sources);
  const settingProblems: Finding[] = report.problems.map((problem) => ({ level: 'error', ...problem }));
  if (report.config === undefined || options.files === false) return { report, state: undefined, findings: settingProblems };
  const state = await checkConfiguration(report.config, { report, ...(options.clock === undefined ? {} : { clock: options.clock }) });
  return { report, state, findings: state.findings };
}

/** What the checks found besides problems, for the report and the start-up banner. */
export interface ConfigurationState {
  readonly findings: readonly Finding[];
  /** `missing`: the server creates it at start. Absent when the check failed. */
  readonly dataDir?: 'exists' | 'missing';
  /** Accounts in the user file (0 when it does not exist yet); absent when it cannot be read. */
  readonly accounts?: { readonly users: number; readonly clients: number };
  /** The signing key file (EdDSA, ES256); `exists: false` means it is generated at start. */
  readonly signingKey?: { readonly file: string; readonly exists: boolean };
  /** The TLS certificate's subject and end of validity. */
  readonly tls?: { readonly subject: string; readonly validTo: string };
}

/** A certificate that ends sooner than this gets a warning (an error once it has ended). */
const CERTIFICATE_WARNING_MS = 14 * 86_400_000;

/**
 * Runs every check on `config`.
 * @param options.report what `inspectConfig` found: the configuration file, if any, is checked
 *   for secrets readable by other users.
 * @param options.clock for the certificate's validity; default `Date.now`.
 */
export async function checkConfiguration(
  config: Config,
  options: { readonly report?: Pick<ConfigReport, 'file' | 'given'>; readonly clock?: () => number } = {},
): Promise<ConfigurationState> {
  const clock = options.clock ?? Date.now;
  const findings: Finding[] = [];
  const error = (key: string, message: string) => findings.push({ level: 'error', key, message });
  const warning = (key: string, message: string) => findings.push({ level: 'warning', key, message });
  /** Runs a check that throws ConfigError; anything else is a bug and is thrown on. */
  const attempt = async <T>(check: () => Promise<T> | T): Promise<T | undefined> => {
    try {
      return await check();
    } catch (thrown) {
      if (!(thrown instanceof ConfigError)) throw thrown;
      error(thrown.key, thrown.problems[0]?.message ?? thrown.message);
      return undefined;
    }
  };

  const dataDir = await attempt(() => checkDataDir(config.dataDir));

  const accounts = await attempt(async () => {
    const store = await openFileUserStore({ file: config.usersFile });
    try {
      const list = await store.list();
      return { users: list.filter((account) => account.kind === 'user').length, clients: list.filter((a) => a.kind === 'service').length };
    } finally {
      await store.close();
    }
  });

  const signingKey =
    config.jwt.alg === 'HS256' ? undefined : await attempt(() => checkSigningKey(config.dataDir, config.jwt.alg as 'EdDSA' | 'ES256'));

  let tls: ConfigurationState['tls'];
  if (config.tls !== undefined) {
    const files = config.tls;
    const credentials = await attempt(() => loadTlsCredentials(files));
    if (credentials !== undefined) {
      const certificate = new X509Certificate(credentials.cert);
      const now = clock();
      const from = Date.parse(certificate.validFrom);
      const to = Date.parse(certificate.validTo);
      tls = { subject: certificate.subject.replaceAll('\n', ', '), validTo: new Date(to).toISOString() };
      if (now < from) error('TLS_CERT_FILE', `${files.certFile} is not valid before ${new Date(from).toISOString()}`);
      else if (now >= to)
        error('TLS_CERT_FILE', `${files.certFile} expired on ${new Date(to).toISOString()}: every TLS handshake would fail`);
      else if (to - now < CERTIFICATE_WARNING_MS) {
        warning(
          'TLS_CERT_FILE',
          `${files.certFile} expires on ${new Date(to).toISOString()}, in ${Math.ceil((to - now) / 86_400_000)} days`,
        );
      }
      if (config.publicOrigin !== undefined) {
        const host = new URL(config.publicOrigin).hostname.replace(/^\[|\]$/g, '');
        const matches = /^[\d.]+$|:/.test(host) ? certificate.checkIP(host) : certificate.checkHost(host);
        if (matches === undefined) warning('TLS_CERT_FILE', `${files.certFile} is not valid for ${host}, the host of PUBLIC_ORIGIN`);
      }
    }
  }

  const report = options.report;
  if (report?.file !== undefined) {
    const secrets = Object.entries(report.given)
      .filter(([name, given]) => given?.from === 'file' && maskSetting(name, given.value) !== given.value)
      .map(([name]) => name);
    if (secrets.length > 0) {
      const mode = await stat(report.file).then(
        (stats) => stats.mode,
        () => undefined,
      );
      if (mode !== undefined && (mode & 0o077) !== 0) {
        warning(
          secrets[0]!,
          `${report.file} holds ${secrets.join(', ')} and can be read by other users (mode ${(mode & 0o777).toString(8)}): chmod 600 it`,
        );
      }
    }
  }

  return {
    findings,
    ...(dataDir === undefined ? {} : { dataDir }),
    ...(accounts === undefined ? {} : { accounts }),
    ...(signingKey === undefined ? {} : { signingKey }),
    ...(tls === undefined ? {} : { tls }),
  };
}

/** Setting names that hold a secret: the value is never shown. */
const SECRET_NAME = /SECRET|TOKEN|PASSWORD|PASSPHRASE|CREDENTIAL|PRIVATE/;
/** Field names that hold a secret in the contents of a file (ISSUERS_FILE, a webhook list). */
const SECRET_FIELD = /secret|token|password|passphrase|credential|private/i;

/**
 * A setting's value as it may be shown (`notify config check`): a secret setting (by its name:
 * JWT_SECRET, METRICS_TOKEN, ...) as its length only, and the credentials of a URL (REDIS_URL's
 * password, a `?password=` parameter) masked in any value.
 */
export function maskSetting(name: string, value: string): string {
  if (SECRET_NAME.test(name)) return `******** (${value.length} characters)`;
  return maskUrlCredentials(value);
}

/**
 * A copy of `value` (parsed file contents) with every secret-looking field masked and URL
 * credentials removed from every string, for showing what a file configures.
 */
export function maskSecrets(value: unknown, field = ''): unknown {
  if (typeof value === 'string') return SECRET_FIELD.test(field) ? '********' : maskUrlCredentials(value);
  if (Array.isArray(value)) return value.map((item) => maskSecrets(item, field));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, SECRET_FIELD.test(key) ? '********' : maskSecrets(item, key)]),
    );
  }
  return value;
}

function maskUrlCredentials(value: string): string {
  return (
    value
      // scheme://user:password@ or scheme://token@
      .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i, (_match, scheme: string, userinfo: string) =>
        userinfo.includes(':') ? `${scheme}${userinfo.slice(0, userinfo.indexOf(':'))}:****@` : `${scheme}****@`,
      )
      .replace(/([?&](?:password|pass|secret|token|auth)=)[^&#]*/gi, '$1****')
  );
}
