import { expect } from 'chai';
import { delegatedGrants, delegationFor, mayDelegate, permissionsOf, scopeOf } from '../../../src/auth/delegation.js';
import type { RoleTable } from '../../../src/auth/role-table.js';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { OAuthError } from '../../../src/errors.js';
import { errorOf } from '../../helpers/errors.js';

const roles: RoleTable = {
  user: { publish: [], subscribe: ['users/{sub}/**'], presence: [] },
  app: {
    publish: [],
    subscribe: [],
    presence: [],
    delegate: { publish: ['users/{sub}/outbox'], subscribe: ['users/{sub}/**', 'public/**'] },
  },
  ops: { publish: [], subscribe: [], presence: [], permissions: ['manage_accounts'] },
  audit: { publish: [], subscribe: [], presence: [], permissions: ['revoke_subjects'] },
};

describe('delegation', () => {
  it('grants nothing and no permission to a role that does not say so', () => {
    expect(mayDelegate(roles, ['user'])).to.equal(false);
    expect(delegationFor(roles, ['user', 'unknown'], 'x')).to.equal(undefined);
    expect([...permissionsOf(roles, ['user', 'app'])]).to.deep.equal([]);
    expect([...permissionsOf(roles, ['ops', 'audit'])].sort()).to.deep.equal(['manage_accounts', 'revoke_subjects']);
    expect([...permissionsOf(roles, ['constructor', '__proto__'])]).to.deep.equal([]);
  });

  it('expands {sub} to the subject and defaults to the whole delegation', () => {
    const delegation = delegationFor(roles, ['app'], 'app~alice')!;
    const grants = delegatedGrants(delegation, undefined, 'app~alice');
    expect(grants).to.deep.equal({ publish: ['users/app~alice/outbox'], subscribe: ['users/app~alice/**', 'public/**'] });
    expect(scopeOf(grants)).to.equal('subscribe:users/app~alice/** subscribe:public/** publish:users/app~alice/outbox');
  });

  it('takes requested items the delegation covers, with {sub}', () => {
    const delegation = delegationFor(roles, ['app'], 'app~alice')!;
    expect(delegatedGrants(delegation, 'subscribe:users/{sub}/inbox  subscribe:public/news', 'app~alice')).to.deep.equal({
      publish: [],
      subscribe: ['users/app~alice/inbox', 'public/news'],
    });
  });

  for (const scope of [
    'subscribe:**',
    'subscribe:users/*/**',
    'publish:public/x',
    'subscribe:users/app~bob/inbox',
    'read:x',
    'subscribe',
    'subscribe:a//b',
  ]) {
    it(`refuses ${JSON.stringify(scope)} with invalid_scope`, () => {
      const error = errorOf(() => delegatedGrants(delegationFor(roles, ['app'], 'app~alice')!, scope, 'app~alice'));
      expect(error).to.be.instanceOf(OAuthError);
      expect((error as OAuthError).code).to.equal('invalid_scope');
    });
  }

  it('refuses more than 64 scope items', () => {
    const scope = Array.from({ length: 65 }, () => 'subscribe:public/x').join(' ');
    expect((errorOf(() => delegatedGrants(delegationFor(roles, ['app'], 's')!, scope, 's')) as OAuthError).code).to.equal('invalid_scope');
  });

  describe('in ROLES_FILE', () => {
    const load = (table: unknown) => errorOf(() => loadConfig({ ROLES_FILE: '/roles.json' }, () => JSON.stringify(table)));
    it('refuses a delegate selector that is not one, or a placeholder other than {sub}, naming ROLES_FILE', () => {
      for (const delegate of [
        { subscribe: ['users/**/x'] },
        { subscribe: ['users/{user}/**'] },
        { publish: ['users/x{sub}/**'] },
        { admin: [] },
      ]) {
        const error = load({ app: { delegate } });
        expect(error).to.be.instanceOf(ConfigError);
        expect((error as ConfigError).key).to.equal('ROLES_FILE');
      }
    });
    it('refuses an unknown permission, naming ROLES_FILE', () => {
      expect((load({ ops: { permissions: ['root'] } }) as ConfigError).key).to.equal('ROLES_FILE');
    });
    it('accepts a role with delegate and permissions', () => {
      const config = loadConfig({ ROLES_FILE: '/roles.json' }, () =>
        JSON.stringify({ app: { delegate: { subscribe: ['users/{sub}/**'] }, permissions: ['revoke_subjects'] } }),
      );
      expect(config.roles.app).to.deep.equal({
        publish: [],
        subscribe: [],
        presence: [],
        delegate: { publish: [], subscribe: ['users/{sub}/**'] },
        permissions: ['revoke_subjects'],
      });
    });
  });
});
