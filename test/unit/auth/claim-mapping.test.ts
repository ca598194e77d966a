import { expect } from 'chai';
import {
  claimAt,
  ClaimMappingError,
  externalGrants,
  externalSubject,
  listClaim,
  MAX_LIST_VALUES,
} from '../../../src/auth/claim-mapping.js';
import type { IssuerConfig } from '../../../src/auth/issuer-config.js';
import { DEFAULT_ROLES } from '../../../src/auth/role-table.js';
import { errorOf } from '../../helpers/errors.js';

const subject = (overrides: Partial<IssuerConfig['subject']> = {}): IssuerConfig['subject'] => ({
  claim: ['sub'],
  prefix: 'kc~',
  encoding: 'plain',
  ...overrides,
});
const noGrants: IssuerConfig['grants'] = { roles: undefined, fixed: undefined, topicsClaim: undefined };

describe('claim-mapping', () => {
  describe('claimAt', () => {
    it('follows dotted paths into nested claims and gives undefined for any missing step', () => {
      const payload = { realm_access: { roles: ['a'] }, 'cognito:groups': ['g'] };
      expect(claimAt(payload, ['realm_access', 'roles'])).to.deep.equal(['a']);
      expect(claimAt(payload, ['cognito:groups'])).to.deep.equal(['g']);
      expect(claimAt(payload, ['realm_access', 'roles', 'deeper'])).to.equal(undefined);
      expect(claimAt(payload, ['nope', 'roles'])).to.equal(undefined);
    });

    it('never reaches the prototype (constructor, toString, __proto__)', () => {
      expect(claimAt({}, ['constructor'])).to.equal(undefined);
      expect(claimAt({}, ['toString'])).to.equal(undefined);
      expect(claimAt(JSON.parse('{"__proto__": {"x": 1}}'), ['__proto__', 'x'])).to.equal(1); // an own key, as JSON.parse makes it
      expect(claimAt({ list: ['a'] }, ['list', 'length'])).to.equal(undefined);
    });
  });

  describe('listClaim', () => {
    it('splits a scope string on spaces and takes an array of strings as it is', () => {
      expect(listClaim('read  write notify')).to.deep.equal(['read', 'write', 'notify']);
      expect(listClaim(['a', 'b'])).to.deep.equal(['a', 'b']);
    });

    it('skips non-strings and over-long values, and gives nothing for other shapes', () => {
      expect(listClaim(['a', 1, null, { x: 1 }, 'x'.repeat(257), 'b'])).to.deep.equal(['a', 'b']);
      expect(listClaim({ a: 1 })).to.deep.equal([]);
      expect(listClaim(42)).to.deep.equal([]);
    });

    it('refuses a list of more than MAX_LIST_VALUES values (a 1 MB groups claim)', () => {
      const error = errorOf(() => listClaim(Array.from({ length: MAX_LIST_VALUES + 1 }, (_, i) => `g${i}`)));
      expect(error).to.be.instanceOf(ClaimMappingError);
      expect((error as ClaimMappingError).reason).to.equal('claims');
    });
  });

  describe('externalSubject', () => {
    it('namespaces the subject with the prefix', () => {
      expect(externalSubject({ sub: 'f8c3de3d-1fea-4d7c-a8b0-29f63c4c3454' }, subject())).to.equal(
        'kc~f8c3de3d-1fea-4d7c-a8b0-29f63c4c3454',
      );
      expect(externalSubject({ oid: 'AbC_9' }, subject({ claim: ['oid'], prefix: 'entra~' }))).to.equal('entra~AbC_9');
    });

    it('encodes subjects with characters topics do not allow when configured (auth0|123)', () => {
      const name = externalSubject({ sub: 'auth0|64f0' }, subject({ encoding: 'base64url', prefix: 'auth0~' }));
      expect(name).to.equal(`auth0~${Buffer.from('auth0|64f0').toString('base64url')}`);
    });

    for (const sub of ['auth0|64f0', 'a/b', '{sub}', 'a b', '', 42, undefined, 'x'.repeat(80), '..']) {
      it(`refuses the subject ${JSON.stringify(sub)} with plain encoding`, () => {
        const error = errorOf(() => externalSubject({ sub }, subject({ prefix: '' })));
        expect((error as ClaimMappingError).reason).to.equal('subject');
      });
    }
  });

  describe('externalGrants', () => {
    it('maps roles through the map and the role table, expanding {sub} to the namespaced subject', () => {
      const grants = externalGrants(
        { realm_access: { roles: ['notify-user', 'other'] } },
        { ...noGrants, roles: { claim: ['realm_access', 'roles'], map: { 'notify-user': ['user'] } } },
        DEFAULT_ROLES,
        'kc~alice',
      );
      expect(grants).to.deep.equal({ publish: [], subscribe: ['users/kc~alice/**', 'public/**'] });
    });

    it('adds the fixed grant and a topics claim of our own shape', () => {
      const grants = externalGrants(
        { notify: { topics: { publish: ['a/b'], subscribe: ['c/**'] } } },
        { ...noGrants, fixed: { publish: [], subscribe: ['users/{sub}/inbox'] }, topicsClaim: ['notify', 'topics'] },
        DEFAULT_ROLES,
        'app~42',
      );
      expect(grants).to.deep.equal({ publish: ['a/b'], subscribe: ['users/app~42/inbox', 'c/**'] });
    });

    it('grants nothing for a map value that is a prototype key', () => {
      const grants = externalGrants(
        { groups: ['constructor', '__proto__', 'toString'] },
        { ...noGrants, roles: { claim: ['groups'], map: {} } },
        DEFAULT_ROLES,
        'x~y',
      );
      expect(grants).to.deep.equal({ publish: [], subscribe: [] });
    });

    for (const [what, claim] of [
      ['not an object', ['a']],
      ['an unknown key', { publish: [], admin: true }],
      ['a non-string selector', { publish: [1] }],
      ['too many selectors', { publish: Array.from({ length: 65 }, (_, i) => `t/${i}`) }],
    ] as const) {
      it(`refuses a topics claim with ${what}`, () => {
        const error = errorOf(() => externalGrants({ topics: claim }, { ...noGrants, topicsClaim: ['topics'] }, DEFAULT_ROLES, 'x~y'));
        expect((error as ClaimMappingError).reason).to.equal('claims');
      });
    }
  });
});
