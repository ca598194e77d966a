import { expect } from 'chai';
import { basicAuth, form } from '../helpers/auth.js';
import { DELEGATION_ROLES, startServerWithIssuers } from '../helpers/issuers.js';
import { expectResponseMatchesSpec } from '../helpers/openapi.js';
import { openStream, PASSWORD, postJson, type TestServer } from '../helpers/server.js';
import { readJson } from '../helpers/streams.js';

const SECRET = 'ops-secret-ops-secret-ops-secret';

/**
 * Issue 10 §2, §3: the account API the CLI implies, and subject revocation, for service clients
 * whose role has the permission. Runs on the Redis backend too (`TEST_BUS=redis`).
 */
describe('admin API', function () {
  this.timeout(20_000);
  let t: TestServer;
  let ops: string;

  const clientToken = async (name: string, secret = SECRET) => {
    const res = await fetch(`${t.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(name, secret) },
      body: form({ grant_type: 'client_credentials' }),
    });
    const body = (await res.json()) as { access_token: string };
    expect(res.status, JSON.stringify(body)).to.equal(200);
    return body.access_token;
  };
  const call = async (method: string, path: string, token: string, body?: unknown) =>
    readJson(
      await fetch(`${t.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );

  before(async () => {
    t = await startServerWithIssuers([], {}, (c) => ({ ...c, roles: DELEGATION_ROLES }));
    await t.addAccount('ops', ['ops'], { kind: 'service', password: SECRET });
    await t.addAccount('app', ['app'], { kind: 'service', password: SECRET });
    await t.addAccount('newsroom', ['publisher', 'admin'], { kind: 'service', password: SECRET });
    await t.addAccount('root', ['admin', 'ops'], { kind: 'user' });
    ops = await clientToken('ops');
  });
  after(() => t?.close());

  it('lists accounts without their hashes', async () => {
    const res = await call('GET', '/admin/accounts', ops);
    expect(res.status).to.equal(200);
    expectResponseMatchesSpec(res, 'get', '/admin/accounts');
    expect(res.body.accounts.map((a: { name: string }) => a.name)).to.include.members(['ops', 'app', 'newsroom', 'root']);
    expect(JSON.stringify(res.body)).to.not.include('scrypt');
  });

  it('creates a user who can sign in, sets its roles, and removes it (its stream closes, its token stops working)', async () => {
    const created = await call('POST', '/admin/accounts', ops, { name: 'erin', kind: 'user', roles: ['user'], password: PASSWORD });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    expectResponseMatchesSpec(created, 'post', '/admin/accounts');
    expect(created.body).to.not.have.property('secret');
    const token = (await t.login('erin')).access_token;
    const stream = openStream(`${t.url}/events?topic=${encodeURIComponent('users/erin/**')}`, token);
    try {
      await stream.waitFor((event) => event.type === 'connected');
      const roles = await call('PUT', '/admin/accounts/erin/roles', ops, { roles: ['user', 'publisher'] });
      expect(roles.status).to.equal(200);
      expectResponseMatchesSpec(roles, 'put', '/admin/accounts/{name}/roles');
      expect(roles.body.account.roles).to.deep.equal(['user', 'publisher']);
      const revoked = await stream.waitFor((event) => event.type === 'closed');
      expect(JSON.parse(revoked.data).reason).to.equal('revoked');
    } finally {
      stream.close();
    }
    const removed = await call('DELETE', '/admin/accounts/erin', ops);
    expect(removed.status).to.equal(204);
    const signIn = await postJson(`${t.url}/auth/login`, { username: 'erin', password: PASSWORD });
    expect(signIn.status).to.equal(401);
    const again = await call('DELETE', '/admin/accounts/erin', ops);
    expect(again.status).to.equal(404);
    expect(again.body.error).to.equal('account_not_found');
    expectResponseMatchesSpec(again, 'delete', '/admin/accounts/{name}');
  });

  it('creates a service client and returns its generated secret once; the secret works', async () => {
    const created = await call('POST', '/admin/accounts', ops, { name: 'billing', kind: 'service', roles: ['publisher'] });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    expect(created.body.secret).to.match(/^[A-Za-z0-9_-]{43}$/);
    await clientToken('billing', created.body.secret);
    const listed = await call('GET', '/admin/accounts', ops);
    expect(JSON.stringify(listed.body)).to.not.include(created.body.secret);
  });

  for (const [what, body, status, code] of [
    ['a taken name', { name: 'ops', kind: 'service', roles: [] }, 409, 'account_exists'],
    ['a bad name', { name: 'Bad Name', kind: 'user', roles: [], password: PASSWORD }, 400, 'invalid_account_name'],
    ['a namespaced name', { name: 'kc~alice', kind: 'user', roles: [], password: PASSWORD }, 400, 'invalid_account_name'],
    ['a role the table lacks', { name: 'x1', kind: 'user', roles: ['superuser'], password: PASSWORD }, 400, 'unknown_role'],
    ['a user without a password', { name: 'x2', kind: 'user', roles: ['user'] }, 400, 'invalid_request'],
    ['a short password', { name: 'x3', kind: 'user', roles: ['user'], password: 'short' }, 400, 'invalid_password'],
    ['a service client with a chosen secret', { name: 'x4', kind: 'service', roles: [], password: PASSWORD }, 400, 'invalid_request'],
    ['an unknown field', { name: 'x5', kind: 'user', roles: [], password: PASSWORD, passwordHash: '$scrypt$' }, 400, 'invalid_request'],
  ] as const) {
    it(`refuses to create an account with ${what} (${status} ${code})`, async () => {
      const res = await call('POST', '/admin/accounts', ops, body);
      expect(res.status, JSON.stringify(res.body)).to.equal(status);
      expect(res.body.error).to.equal(code);
      expectResponseMatchesSpec(res, 'post', '/admin/accounts');
    });
  }

  it('refuses callers without the permission: a publisher (even with the admin role), a person with it, a minted token', async () => {
    const newsroom = await clientToken('newsroom');
    const person = (await t.login('root')).access_token;
    const minted = await readJson(
      await fetch(`${t.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('app', SECRET) },
        body: form({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: 'ops',
          subject_token_type: 'urn:notify:params:oauth:token-type:subject-name',
        }),
      }),
    );
    for (const token of [newsroom, person, minted.body.access_token as string]) {
      for (const [method, path, body] of [
        ['GET', '/admin/accounts', undefined],
        ['POST', '/admin/revocations', { subject: 'alice' }],
      ] as const) {
        const res = await call(method, path, token, body);
        expect(res.status, `${method} ${path}`).to.equal(403);
        expect(res.body.error).to.equal('insufficient_scope');
        expectResponseMatchesSpec(res, method.toLowerCase(), path);
      }
    }
    expect((await call('GET', '/admin/accounts', 'not-a-token')).status).to.equal(401);
  });

  it('revokes a minted subject: its open streams close with revoked, its earlier tokens stop working, new ones work', async () => {
    const mint = async () =>
      readJson(
        await fetch(`${t.url}/auth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('app', SECRET) },
          body: form({
            grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
            subject_token: 'frank',
            subject_token_type: 'urn:notify:params:oauth:token-type:subject-name',
          }),
        }),
      );
    const before = (await mint()).body.access_token as string;
    const stream = openStream(`${t.url}/events?topic=${encodeURIComponent('users/app~frank/**')}`, before);
    try {
      await stream.waitFor((event) => event.type === 'connected');
      const res = await call('POST', '/admin/revocations', ops, { subject: 'app~frank' });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expectResponseMatchesSpec(res, 'post', '/admin/revocations');
      const closed = await stream.waitFor((event) => event.type === 'closed');
      expect(JSON.parse(closed.data).reason).to.equal('revoked');
    } finally {
      stream.close();
    }
    const publish = await readJson(await postJson(`${t.url}/events`, { topics: ['users/app~frank/x'], data: 1 }, before));
    expect(publish.status).to.equal(401);
    const after = (await mint()).body.access_token as string;
    const reopened = openStream(`${t.url}/events?topic=${encodeURIComponent('users/app~frank/**')}`, after);
    try {
      await reopened.waitFor((event) => event.type === 'connected');
    } finally {
      reopened.close();
    }
  });

  it('refuses a revocation of something that is not a subject', async () => {
    const res = await call('POST', '/admin/revocations', ops, { subject: 'users/alice' });
    expect(res.status).to.equal(400);
    expect(res.body.error).to.equal('invalid_subject');
  });
});
