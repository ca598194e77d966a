import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { configTable, README, withTable } from '../../scripts/config-table.js';
import { SETTINGS, type SettingDoc } from '../../src/config.js';

describe('the README configuration table', () => {
  it('is exactly what the settings schema generates (run `npm run docs:config` after changing a setting)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).to.equal(withTable(readme, configTable()));
  });

  it('documents every setting the schema reads, with a description', () => {
    const table = configTable();
    for (const [name, schema] of Object.entries(SETTINGS)) {
      expect((schema.meta() as SettingDoc | undefined)?.description, name)
        .to.be.a('string')
        .and.not.equal('');
      expect(table).to.include(`| \`${name}\` |`);
    }
  });
});
