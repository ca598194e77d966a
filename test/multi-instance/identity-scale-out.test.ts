import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { FileUserStore } from '../../src/auth/file-user-store.js';
import { hashPassword } from '../../src/auth/password.js';
import { basicAuth, form } from '../helpers/auth.js';
import { Deployment, type Instance } from '../helpers/instances.js';
import { DELEGATION_ROLES } from '../helpers/issuers.js';
import { NOTIFY_AUDIENCE, startProvider, type TestProvider } from '../helpers/oidc-provider.js';
import { deleteKeys, TEST_REDIS_URL } from '../helpers/redis.js';
import { openStream, TEST_LOG_N, type StreamClient } from '../helpers/server.js';
import { readJson } from '../helpers/streams.js';

const SECRET = 'service-secret-service-secret-00';

/**
 * Issue 10 §3 on the Redis backend, with real server processes: a backend mints a token on one
 * instance, the stream is held by another, an IdP user streams there too, and one revocation per
 * subject through the admin API of the first instance closes both streams (`revoked`) and ends the
 * tokens on every instance.
 */
describe('identity on several instances (Redis)', function () {
  this.timeout(60_000);
  const deployment = new Deployment(TEST_REDIS_URL);
  let idp: TestProvider;
  let a: Instance;
  let b: Instance;
  const streams: StreamClient[] = [];

  before(async () => {
    idp = await startProvider();
    const rolesFile = path.join(deployment.dataDir, 'roles.json');
    const issuersFile = path.join(deployment.dataDir, 'issuers.json');
    writeFileSync(rolesFile, JSON.stringify(DELEGATION_ROLES));
    writeFileSync(
      issuersFile,
      JSON.stringify({
        issuers: [
          {
            alias: 'idp',
            issuer: idp.issuer,
            audience: NOTIFY_AUDIENCE,
            algorithms: ['ES256'],
            keys: { discovery: true },
            grants: { fixed: { subscribe: ['users/{sub}/**'] } },
          },
        ],
      }),
    );
    const store = new FileUserStore({ file: path.join(deployment.dataDir, 'users.json') });
    const passwordHash = await hashPassword(SECRET, { logN: TEST_LOG_N });
    await store.add({ name: 'app', kind: 'service', roles: ['app'], passwordHash });
    await store.add({ name: 'ops', kind: 'service', roles: ['ops'], passwordHash });
    await store.close();
    const env = { ROLES_FILE: rolesFile, ISSUERS_FILE: issuersFile };
    [a, b] = await Promise.all([deployment.start('A', env), deployment.start('B', env)]);
  });
  after(async () => {
    for (const stream of streams) stream.close();
    await deployment.destroy();
    await deleteKeys(TEST_REDIS_URL, deployment.keyPrefix);
    await idp?.stop();
  });

  const token = async (url: string, client: string, fields: Record<string, string>) => {
    const res = await readJson(
      await fetch(`${url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(client, SECRET) },
        body: form(fields),
      }),
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body.access_token as string;
  };
  const stream = (url: string, topic: string, bearer: string) => {
    const opened = openStream(`${url}/events?topic=${encodeURIComponent(topic)}`, bearer);
    streams.push(opened);
    return opened;
  };

  it('closes the streams of a minted and of an external subject on another instance, and ends their tokens there', async () => {
    const minted = await token(a.url, 'app', {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'gina',
      subject_token_type: 'urn:notify:params:oauth:token-type:subject-name',
    });
    const external = (await idp.userTokens('hana')).accessToken;
    const onB = [stream(b.url, 'users/app~gina/**', minted), stream(b.url, 'users/idp~hana/**', external)];
    await Promise.all(onB.map((s) => s.waitFor((event) => event.type === 'connected', 10_000)));

    const ops = await token(a.url, 'ops', { grant_type: 'client_credentials' });
    for (const subject of ['app~gina', 'idp~hana']) {
      const res = await readJson(
        await fetch(`${a.url}/admin/revocations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/json' },
          body: JSON.stringify({ subject }),
        }),
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
    }
    for (const s of onB) {
      const closed = await s.waitFor((event) => event.type === 'closed', 5000);
      expect(JSON.parse(closed.data).reason).to.equal('revoked');
    }
    for (const bearer of [minted, external]) {
      const res = await fetch(`${b.url}/events?topic=public/x`, {
        headers: { authorization: `Bearer ${bearer}`, accept: 'text/event-stream' },
      });
      expect(res.status).to.equal(401);
      await res.body?.cancel();
    }
  });

  it('shows on one instance the account another created through the admin API', async () => {
    const ops = await token(a.url, 'ops', { grant_type: 'client_credentials' });
    const created = await fetch(`${a.url}/admin/accounts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'billing', kind: 'service', roles: ['publisher'] }),
    });
    expect(created.status).to.equal(201);
    const onB = await token(b.url, 'ops', { grant_type: 'client_credentials' });
    const listed = await readJson(await fetch(`${b.url}/admin/accounts`, { headers: { authorization: `Bearer ${onB}` } }));
    expect(listed.body.accounts.map((account: { name: string }) => account.name)).to.include('billing');
  });
});
