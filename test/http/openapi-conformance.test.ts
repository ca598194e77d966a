import { expect } from 'chai';
import { expectResponseMatchesSpec, specOperations } from '../helpers/openapi.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('the server against openapi.yaml', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(() => t.close());

  it('describes every route the server has, and the server has every route it describes', () => {
    const key = (op: { method: string; path: string }) => `${op.method.toUpperCase()} ${op.path}`;
    const served = t.server.routes
      .map(key)
      .filter((route) => !route.startsWith('GET /docs/assets/'))
      .sort();
    const described = specOperations().map(key).sort();
    expect(served).to.deep.equal(described);
  });

  it('answers every described operation, unauthenticated, as the spec says', async () => {
    for (const op of specOperations()) {
      const path = op.path.replace('{connectionId}', 'abc').replace('{file}', 'app.css');
      const res = await fetch(`${t.url}${path}`, {
        method: op.method.toUpperCase(),
        headers: op.method === 'post' ? { 'content-type': 'application/json' } : { accept: 'text/event-stream' },
        body: op.method === 'post' ? '{}' : undefined,
      });
      const type = res.headers.get('content-type') ?? '';
      const body = type.includes('json') ? await res.json() : await res.text();
      expect(res.status, `${op.method} ${op.path}`).to.be.below(500);
      expect(res.status, `${op.method} ${op.path}`).to.not.equal(404);
      expectResponseMatchesSpec({ status: res.status, headers: Object.fromEntries(res.headers), body }, op.method, op.path);
    }
  });
});
