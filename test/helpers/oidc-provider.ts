import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Provider } from 'oidc-provider';

/**
 * A real OpenID Provider for the identity tests (issue 10): panva's `oidc-provider` 8 (the line
 * for Node 20), certified by the OpenID Foundation, started in the test process on a loopback
 * port. It issues RFC 9068 JWT access tokens (`at+jwt`) for the resource `NOTIFY_RESOURCE`
 * (resource indicators, RFC 8707) to a client-credentials client and, through a real
 * authorization-code flow with PKCE driven by HTTP requests against its development login and
 * consent pages (`devInteractions`), to a user.
 *
 * The keys are generated here, so a test can rotate them (restart on the same port with a new
 * key first) and can also sign tokens of its own with them (issuer-confusion cases).
 */

const NOTIFY_RESOURCE = 'urn:notify:api';
export const NOTIFY_AUDIENCE = 'notify';
const BACKEND_CLIENT = { id: 'backend', secret: 'backend-secret-backend-secret' };
const WEB_CLIENT = { id: 'web', secret: 'web-secret-web-secret-web-secret', redirectUri: 'http://127.0.0.1:1/callback' };

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  /** The private JWK the provider signs with. */
  readonly jwk: Record<string, unknown>;
}

export function newSigningKey(kid = randomBytes(6).toString('hex')): SigningKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' } };
}

/** Claims the provider adds to access tokens, by account (user flow) or client id (client credentials). */
export type ExtraClaims = Record<string, Record<string, unknown>>;

export interface TestProvider {
  readonly issuer: string;
  readonly port: number;
  /** Requests the provider received, by path (discovery and JWKS fetches are what the tests count). */
  readonly requests: string[];
  /** The current keys, signing key first. */
  keys: SigningKey[];
  /** A client-credentials access token for `NOTIFY_RESOURCE`. */
  clientCredentialsToken(client?: { id: string; secret: string }): Promise<string>;
  /** An access token for `NOTIFY_RESOURCE` of `account`, through the authorization-code flow; also returns the ID token. */
  userTokens(account: string): Promise<{ accessToken: string; idToken: string }>;
  /** Restarts on the same port with `keys` (the first signs): key rotation at the provider. */
  rotate(keys: SigningKey[]): Promise<void>;
  /** Stops answering (connections refused): the provider is down. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startProvider(
  options: { extraClaims?: ExtraClaims; keys?: SigningKey[]; accessTokenTtl?: number } = {},
): Promise<TestProvider> {
  const requests: string[] = [];
  const extraClaims = options.extraClaims ?? {};
  let keys = options.keys ?? [newSigningKey()];
  let server: http.Server | undefined;
  let port = 0;
  let issuer = '';

  const build = () =>
    new Provider(issuer, {
      clients: [
        {
          client_id: BACKEND_CLIENT.id,
          client_secret: BACKEND_CLIENT.secret,
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
          id_token_signed_response_alg: 'ES256',
        },
        {
          client_id: WEB_CLIENT.id,
          client_secret: WEB_CLIENT.secret,
          grant_types: ['authorization_code'],
          response_types: ['code'],
          redirect_uris: [WEB_CLIENT.redirectUri],
          id_token_signed_response_alg: 'ES256',
        },
      ],
      jwks: { keys: keys.map((key) => key.jwk) as never },
      cookies: { keys: ['test-cookie-key-test-cookie-key'] },
      findAccount: async (_ctx: unknown, id: string) => ({ accountId: id, claims: async () => ({ sub: id }) }),
      features: {
        devInteractions: { enabled: true },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => NOTIFY_RESOURCE,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx: unknown, resource: string) => {
            if (resource !== NOTIFY_RESOURCE) throw new Error(`unknown resource ${resource}`);
            return {
              scope: 'notify',
              audience: NOTIFY_AUDIENCE,
              accessTokenTTL: options.accessTokenTtl ?? 300,
              accessTokenFormat: 'jwt' as const,
              jwt: { sign: { alg: 'ES256' } },
            };
          },
        },
      },
      extraTokenClaims: async (_ctx: unknown, token: { accountId?: string; clientId?: string }) =>
        extraClaims[token.accountId ?? token.clientId ?? ''] ?? undefined,
      // Access tokens live as long as the resource server says (`accessTokenTtl`).
      ttl: {
        AccessToken: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) =>
          token.resourceServer?.accessTokenTTL ?? 300,
        ClientCredentials: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) =>
          token.resourceServer?.accessTokenTTL ?? 300,
        IdToken: 300,
        Session: 600,
        Interaction: 600,
        Grant: 600,
        AuthorizationCode: 60,
      },
    });

  const listen = async () => {
    // The provider warns on every start that its in-memory adapter and dev interactions are for
    // development: true, and the point here; keep the test output readable.
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (!String(args[0]).includes('oidc-provider WARNING')) warn(...args);
    };
    let provider;
    try {
      provider = build();
    } finally {
      console.warn = warn;
    }
    const callback = provider.callback();
    server = http.createServer((req, res) => {
      requests.push(new URL(req.url ?? '/', 'http://x').pathname);
      callback(req, res);
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };

  // The issuer URL needs the port: bind once to learn it, then build the provider for it.
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  issuer = `http://127.0.0.1:${port}`;
  await listen();

  const stop = async () => {
    if (server === undefined) return;
    const closing = server;
    server = undefined;
    closing.closeAllConnections();
    await new Promise<void>((resolve) => closing.close(() => resolve()));
  };

  const handle: TestProvider = {
    get issuer() {
      return issuer;
    },
    get port() {
      return port;
    },
    requests,
    get keys() {
      return keys;
    },
    set keys(next) {
      keys = next;
    },
    async clientCredentialsToken(client = BACKEND_CLIENT) {
      const res = await fetchOnce(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: NOTIFY_RESOURCE, scope: 'notify' }),
      });
      const body = (await res.json()) as { access_token?: string };
      if (res.status !== 200 || body.access_token === undefined)
        throw new Error(`client credentials: ${res.status} ${JSON.stringify(body)}`);
      return body.access_token;
    },
    async userTokens(account) {
      return authorizationCodeFlow(issuer, account);
    },
    async rotate(next) {
      keys = next;
      await stop();
      await listen();
    },
    stop,
    start: listen,
  };
  return handle;
}

/**
 * fetch, tried a second time when the first attempt fails on the network: after `rotate` the
 * client's pooled keep-alive socket to the previous server may be closed under it.
 */
async function fetchOnce(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch {
    return fetch(url, init);
  }
}

/** A minimal cookie jar for one origin: the provider's session and interaction cookies. */
class CookieJar {
  private readonly cookies = new Map<string, string>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }
  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

/**
 * The authorization-code flow with PKCE (RFC 7636) as a browser would run it, by HTTP requests:
 * authorize, the login page (any password), the consent page, the redirect with the code, and the
 * token request with the resource indicator.
 */
async function authorizationCodeFlow(issuer: string, account: string): Promise<{ accessToken: string; idToken: string }> {
  const jar = new CookieJar();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const get = async (url: string) => {
    const res = await fetch(new URL(url, issuer), { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.store(res);
    await res.text();
    return res;
  };
  const post = async (url: string, fields: Record<string, string>) => {
    const res = await fetch(new URL(url, issuer), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
    });
    jar.store(res);
    await res.text();
    return res;
  };
  const location = (res: Response) => {
    const value = res.headers.get('location');
    if (value === null) throw new Error(`expected a redirect, got ${res.status}`);
    return value;
  };

  const authorize = new URL('/auth', issuer);
  authorize.search = new URLSearchParams({
    client_id: WEB_CLIENT.id,
    response_type: 'code',
    redirect_uri: WEB_CLIENT.redirectUri,
    scope: 'openid notify',
    resource: NOTIFY_RESOURCE,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
    nonce: randomBytes(8).toString('hex'),
  }).toString();
  let res = await get(authorize.href);
  let next = location(res); // the login interaction
  await get(next);
  res = await post(next, { prompt: 'login', login: account, password: 'any' });
  res = await get(location(res)); // resume: now the consent interaction
  next = location(res);
  await get(next);
  res = await post(next, { prompt: 'consent' });
  res = await get(location(res)); // resume: redirect to the client with the code
  const callback = new URL(location(res));
  const code = callback.searchParams.get('code');
  if (code === null) throw new Error(`no code in ${callback.href}`);

  const tokenRes = await fetch(new URL('/token', issuer), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${WEB_CLIENT.id}:${WEB_CLIENT.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: WEB_CLIENT.redirectUri,
      code_verifier: verifier,
      resource: NOTIFY_RESOURCE,
    }),
  });
  const body = (await tokenRes.json()) as { access_token?: string; id_token?: string };
  if (tokenRes.status !== 200 || body.access_token === undefined || body.id_token === undefined) {
    throw new Error(`authorization code: ${tokenRes.status} ${JSON.stringify(body)}`);
  }
  return { accessToken: body.access_token, idToken: body.id_token };
}
