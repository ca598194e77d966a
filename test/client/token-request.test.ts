import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { expect } from 'chai';
import { NetworkError, NotifyClientError } from '../../src/client/errors.js';
import { requestToken } from '../../src/client/token-request.js';
import { rejection } from '../helpers/errors.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** A secret with the characters RFC 6749 §2.3.1's form-encoding is there for, and some beyond Latin-1. */
const AWKWARD_SECRET = 'colon:percent%20plus+ é ✓ secret';

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('requestToken (the token request of NotifyClient and `notify token get`)', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
    await t.addAccount('svc-one', ['publisher'], { kind: 'service', password: AWKWARD_SECRET });
  });
  after(() => t.close());

  it('gets a token with client_credentials when the secret holds ":", "%", "+" and non-Latin-1 characters', async () => {
    const body = await requestToken(fetch, `${t.url}/auth/token`, {
      type: 'client_credentials',
      clientId: 'svc-one',
      clientSecret: AWKWARD_SECRET,
    });
    expect(body.token_type).to.equal('Bearer');
    expect(body.access_token.split('.')).to.have.length(3);
    expect(body.expires_in).to.be.a('number');
  });

  it('throws the server code and status when the client is refused', async () => {
    const error = await rejection(
      requestToken(fetch, `${t.url}/auth/token`, { type: 'client_credentials', clientId: 'svc-one', clientSecret: 'wrong' }),
    );
    expect(error).to.be.instanceOf(NotifyClientError);
    expect(error).to.include({ code: 'invalid_client', status: 401 });
  });

  it('throws invalid_grant for a refresh token the server does not know', async () => {
    const error = await rejection(requestToken(fetch, `${t.url}/auth/token`, { type: 'refresh_token', refreshToken: 'not-a-token' }));
    expect(error).to.include({ code: 'invalid_grant', status: 400 });
  });

  it('throws invalid_response when a 200 answer holds no access token', async () => {
    const server = createHttpServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"token_type":"Bearer"}'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const error = await rejection(
        requestToken(fetch, `http://127.0.0.1:${port}/auth/token`, { type: 'refresh_token', refreshToken: 'x' }),
      );
      expect(error).to.include({ code: 'invalid_response', status: 200 });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('throws a NetworkError when nothing answers', async () => {
    const port = await closedPort();
    const error = await rejection(requestToken(fetch, `http://127.0.0.1:${port}/auth/token`, { type: 'refresh_token', refreshToken: 'x' }));
    expect(error).to.be.instanceOf(NetworkError);
    expect(error).to.have.property('code', 'network_error');
  });
});
