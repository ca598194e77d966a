import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';

/**
 * The configuration file (`--config FILE` or `NOTIFY_CONFIG`): the same settings as the
 * environment, under the same names, so a line moves between the two unchanged and the README's
 * one table documents both. JSON (`.json`) or YAML (`.yaml`, `.yml`), read with one YAML 1.2
 * parser, which refuses a key given twice (`JSON.parse` would keep the last one silently).
 *
 * A value is what the environment variable would hold, or, where the setting holds a number or
 * a list, that JSON/YAML type (`"PORT": 3000`, `CORS_ORIGINS: [a, b]`), and `true`/`false` wherever
 * the word is accepted (`TRUST_PROXY: true`). Which type a setting holds is read from its own
 * parser (the value it produces), not from a second list. `null` or an empty string means the default, as an empty environment variable does.
 * Anything else (an unknown key, a nested object, a number where text is expected) is a problem
 * naming the file and the key.
 */

/** One thing wrong with the configuration: the setting (or `--config`/`NOTIFY_CONFIG`), and the file it was read from. */
export interface ConfigProblem {
  readonly key: string;
  readonly message: string;
  /** The configuration file the value came from; absent for the environment. */
  readonly file?: string;
}

/** The settings a file may hold, each with its parser of the environment text. */
type SettingParsers = Readonly<Record<string, z.ZodType<unknown, string | undefined>>>;

export interface ConfigFileContents {
  /** The entries as environment text, for the same parsers; entries with a problem are left out. */
  readonly values: Readonly<Record<string, string>>;
  readonly problems: readonly ConfigProblem[];
}

/**
 * Reads and checks a configuration file.
 * @param file an absolute path.
 * @param namedBy what named the file (`--config` or `NOTIFY_CONFIG`), for problems with the file itself.
 */
export function readConfigFile(
  file: string,
  readFile: (file: string) => string,
  settings: SettingParsers,
  namedBy: string,
): ConfigFileContents {
  const fileProblem = (message: string): ConfigFileContents => ({
    values: {},
    problems: [{ key: namedBy, message: `${file} ${message}` }],
  });
  const extension = path.extname(file).toLowerCase();
  if (extension !== '.json' && extension !== '.yaml' && extension !== '.yml') return fileProblem('must end in .json, .yaml or .yml');
  let text: string;
  try {
    text = readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return fileProblem(
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'cannot be read (permission denied)'
            : `cannot be read (${code ?? (error as Error).message})`,
    );
  }
  const document = parseDocument(text, { schema: extension === '.json' ? 'json' : 'core', uniqueKeys: true, prettyErrors: false });
  if (document.errors.length > 0) {
    return fileProblem(`is not ${extension === '.json' ? 'JSON' : 'YAML'}: ${document.errors[0]!.message.split('\n')[0]}`);
  }
  // Maps, not objects: a `__proto__` key is then an unknown key like any other.
  const root: unknown = document.toJS({ mapAsMap: true, maxAliasCount: 100 });
  if (root === null || root === undefined) return { values: {}, problems: [] };
  if (!(root instanceof Map)) return fileProblem('must hold settings as keys and values (`PORT: 3000`)');

  const values: Record<string, string> = {};
  const problems: ConfigProblem[] = [];
  for (const [key, value] of root as Map<unknown, unknown>) {
    const name = String(key);
    const problem = (message: string) => problems.push({ key: name, message, file });
    const parser = typeof key === 'string' && Object.hasOwn(settings, key) ? settings[key] : undefined;
    if (parser === undefined) {
      const spelled = suggestedName(name);
      problem(
        `is not a setting${spelled !== undefined && Object.hasOwn(settings, spelled) ? ` (write it as ${spelled}, the name of the environment variable)` : ''}`,
      );
      continue;
    }
    const text = asEnvironmentText(value, parser);
    if (typeof text === 'object') problem(text.problem);
    else if (text !== '') values[name] = text;
  }
  return { values, problems };
}

/**
 * A value as the environment would hold it, or why it cannot be one. A number, yes/no or list is
 * accepted where the setting's own parser turns its text into that type, so `HOST: 127` (a number
 * where text is expected, and surely a mistake) is refused while `PORT: 3000` is not.
 */
function asEnvironmentText(value: unknown, parser: z.ZodType<unknown, string | undefined>): string | { problem: string } {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  let text: string;
  let kind: 'number' | 'boolean' | 'list';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { problem: 'must be a finite number' };
    text = String(value);
    kind = 'number';
  } else if (typeof value === 'boolean') {
    text = String(value);
    kind = 'boolean';
  } else if (Array.isArray(value)) {
    const items = value as unknown[];
    if (!items.every((item) => typeof item === 'string')) return { problem: 'must be a list of strings' };
    if (items.some((item) => item.includes(','))) return { problem: 'list items must not hold commas' };
    text = items.join(',');
    kind = 'list';
  } else {
    return { problem: 'must be a single value, not a nested object' };
  }
  const parsed = parser.safeParse(text);
  // A value the parser refuses is passed on as text: the parser's own message then names what is wrong with it.
  if (!parsed.success) return text;
  const produced = Array.isArray(parsed.data) ? 'list' : typeof parsed.data;
  // A yes/no is taken wherever its word is (`COOKIE_SECURE: true` holds the word 'true').
  if (produced === kind || kind === 'boolean') return text;
  return { problem: `must be ${produced === 'list' ? 'a list' : produced === 'string' ? 'a string' : `a ${produced}`}, not a ${kind}` };
}

/** `accessTokenTtl`, `access-token-ttl` -> `ACCESS_TOKEN_TTL`, for a hint when a file spells a setting another way. */
function suggestedName(key: string): string | undefined {
  const name = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[-.\s]+/g, '_')
    .toUpperCase();
  return name === key ? undefined : name;
}
