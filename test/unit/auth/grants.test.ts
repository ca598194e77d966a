import { expect } from 'chai';
import { resolveGrants } from '../../../src/auth/grants.js';
import { DEFAULT_ROLES, roleTableSchema, type RoleTable } from '../../../src/auth/role-table.js';

const ROLES: RoleTable = {
  user: { publish: [], subscribe: ['users/{sub}/**', 'public/**'], presence: [] },
  publisher: { publish: ['public/**', 'users/*/**'], subscribe: ['public/**'], presence: [] },
  echo: { publish: ['users/{sub}/outbox'], subscribe: ['rooms/{sub}/{sub}'], presence: ['rooms/{sub}/*'] },
  watcher: { publish: [], subscribe: [], presence: ['documents/**', 'documents/**'] },
};

describe('resolveGrants', () => {
  it('expands {sub} to the account name when a role uses it', () => {
    expect(resolveGrants(ROLES, ['user'], 'alice')).to.deep.equal({
      publish: [],
      subscribe: ['users/alice/**', 'public/**'],
      presence: [],
    });
  });

  it('resolves presence grants like the others: {sub} expanded, each selector once', () => {
    expect(resolveGrants(ROLES, ['echo', 'watcher'], 'bob').presence).to.deep.equal(['rooms/bob/*', 'documents/**']);
  });

  it('expands every {sub} when a selector has more than one', () => {
    expect(resolveGrants(ROLES, ['echo'], 'bob').subscribe).to.deep.equal(['rooms/bob/bob']);
  });

  it('merges roles and lists each selector once when roles overlap', () => {
    const grants = resolveGrants(ROLES, ['user', 'publisher', 'user', 'publisher'], 'alice');
    expect(grants.subscribe).to.deep.equal(['users/alice/**', 'public/**']);
    expect(grants.publish).to.deep.equal(['public/**', 'users/*/**']);
  });

  it('grants nothing for unknown roles and for prototype property names', () => {
    const names = ['nope', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype'];
    expect(resolveGrants(ROLES, names, 'alice')).to.deep.equal({ publish: [], subscribe: [], presence: [] });
    expect(resolveGrants(ROLES, ['constructor', 'user', '__proto__'], 'alice').subscribe).to.deep.equal(['users/alice/**', 'public/**']);
  });

  it('grants nothing when the account has no roles', () => {
    expect(resolveGrants(ROLES, [], 'alice')).to.deep.equal({ publish: [], subscribe: [], presence: [] });
  });
});

describe('roleTableSchema', () => {
  const valid = (table: unknown) => roleTableSchema.safeParse(table).success;
  it('accepts the default roles and a table using {sub} as a whole segment', () => {
    expect(valid(DEFAULT_ROLES)).to.equal(true);
    expect(valid(ROLES)).to.equal(true);
    expect(valid({})).to.equal(true);
  });

  for (const [when, selector] of [
    ['** is not last', 'a/**/b'],
    ['a wildcard is part of a segment', 'users/a*'],
    ['a segment is empty', 'users//inbox'],
    ['a segment is ..', 'users/../admin'],
    ['{sub} is inside a segment', 'users/x{sub}/**'],
    ['{sub} is a prefix of a segment', 'users/{sub}-inbox'],
    ['another placeholder is used', 'users/{user}/**'],
    ['a brace is unbalanced', 'users/{sub'],
  ] as const) {
    it(`refuses a table where ${when} in publish`, () => {
      expect(valid({ bad: { publish: [selector], subscribe: [] } })).to.equal(false);
    });
    it(`refuses a table where ${when} in subscribe`, () => {
      expect(valid({ bad: { publish: [], subscribe: [selector] } })).to.equal(false);
    });
    it(`refuses a table where ${when} in presence`, () => {
      expect(valid({ bad: { presence: [selector] } })).to.equal(false);
    });
  }
});
