// The README's configuration table, generated from the settings schema (src/config.ts SETTINGS),
// so the two cannot drift. `npm run docs:config` rewrites the table in README.md between its
// markers; test/unit/config-docs.test.ts fails when they differ.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETTINGS, type SettingDoc } from '../src/config.js';

export const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
export const START = '<!-- config-table:start (generated from src/config.ts by `npm run docs:config`) -->';
export const END = '<!-- config-table:end -->';

/** The markdown table, one row per setting in SETTINGS order. */
export function configTable(): string {
  const rows = Object.entries(SETTINGS).map(([name, schema]) => {
    const doc = schema.meta() as SettingDoc | undefined;
    if (doc === undefined) throw new Error(`${name} has no documentation`);
    const shown = doc.defaultText ?? (doc.default === undefined ? 'unset' : `\`${doc.default}\``);
    const unit = doc.unit === 's' ? ' (s)' : '';
    return `| \`${name}\` | ${shown}${unit} | ${doc.description.replaceAll('|', '\\|')} |`;
  });
  return ['| variable | default | what it does, and why that default |', '|---|---|---|', ...rows].join('\n');
}

/** README.md with the section between the markers replaced by `table`. */
export function withTable(readme: string, table: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${START} ... ${END} section`);
  return `${readme.slice(0, start + START.length)}\n${table}\n${readme.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(README, withTable(readFileSync(README, 'utf8'), configTable()));
}
