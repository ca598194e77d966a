import { expect } from 'chai';
import { startServer, type TestServer } from '../helpers/server.js';

describe('deliberate 503 answers', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
    await t.addAccount('alice', ['user']);
  });
  after(() => t.close());

  it('say why (a refusal, unlike a failure, is not hidden) when the server is shutting down', async () => {
    const { access_token: token } = await t.login('alice');
    t.server.registry.closeAll('shutdown');
    const res = await fetch(`${t.url}/events?topic=public/news`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).to.equal(503);
    const body = (await res.json()) as { error: string; error_description: string };
    expect(body.error).to.equal('shutting_down');
    expect(body.error_description).to.not.equal('Internal server error.');
    expect(res.headers.get('retry-after')).to.equal('1');
  });
});
