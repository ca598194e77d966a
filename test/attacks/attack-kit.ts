import { createHmac, sign as cryptoSign, type KeyObject } from 'node:crypto';
import net from 'node:net';
import { expect } from 'chai';
import { expectResponseMatchesSpec } from '../helpers/openapi.js';
import { readJson } from '../helpers/streams.js';

/**
 * The attacker's tool box for the black-box attack suite: hand-built JWS tokens (no jose on this
 * side, so nothing "helps" the attacker by normalising what is sent), raw HTTP over a bare socket
 * (for what fetch refuses to send: huge headers, slow bytes, bodies that lie about their length),
 * and one assertion per kind of refusal.
 */

export const b64url = (value: Buffer | string | object): string =>
  (Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))).toString('base64url');

/** A compact JWS from a header, a payload and a signer over `header.payload` (ASCII). */
export function jws(header: object, payload: object | string, signer: (input: string) => Buffer | string = () => ''): string {
  const input = `${b64url(header)}.${b64url(typeof payload === 'string' ? payload : payload)}`;
  const signature = signer(input);
  return `${input}.${typeof signature === 'string' ? signature : b64url(signature)}`;
}

export const hmacSigner = (alg: 'sha256' | 'sha384' | 'sha512', key: Buffer | string) => (input: string) =>
  createHmac(alg, key).update(input).digest();
/** Ed25519 (EdDSA) with a KeyObject. */
export const ed25519Signer = (key: KeyObject) => (input: string) => cryptoSign(null, Buffer.from(input), key);
/** ES256: JOSE wants the raw r||s form (RFC 7518 §3.4), not DER. */
export const es256Signer = (key: KeyObject) => (input: string) =>
  cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });

/** Decodes the payload of a compact JWS without verifying it. */
export function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
export function headerOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export type Answer = Awaited<ReturnType<typeof readJson>>;

/** `GET /events?topic=...` with a bearer token: the protected resource every forgery is aimed at. */
export async function subscribeWith(
  baseUrl: string,
  token: string,
  topic = 'public/news',
  headers: Record<string, string> = {},
): Promise<Answer> {
  const controller = new AbortController();
  const res = await fetch(`${baseUrl}/events?topic=${encodeURIComponent(topic)}`, {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, ...headers },
    signal: controller.signal,
  });
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    controller.abort();
    return { status: res.status, headers: Object.fromEntries(res.headers.entries()), body: '<text/event-stream>' };
  }
  return readJson(res);
}

/** RFC 6750 §3.1: 401, `invalid_token` in the body and in the challenge, nothing that says which check failed. */
export function expectInvalidToken(res: Answer, method = 'get', path = '/events'): void {
  expect(res.status, JSON.stringify(res.body)).to.equal(401);
  expect(res.body.error).to.equal('invalid_token');
  expect(res.body.error_description).to.equal('The access token is invalid or has expired.');
  expect(res.headers['www-authenticate']).to.equal(
    'Bearer realm="notify", error="invalid_token", error_description="The access token is invalid or has expired."',
  );
  expectResponseMatchesSpec(res, method, path);
}

export function expectError(res: Answer, status: number, code: string): void {
  expect(res.status, JSON.stringify(res.body)).to.equal(status);
  expect(res.body?.error, JSON.stringify(res.body)).to.equal(code);
}

/** What came back over a raw socket. */
export interface RawAnswer {
  readonly status: number;
  readonly head: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly json: any;
  /** Milliseconds from connect to the socket closing (or the answer being complete). */
  readonly ms: number;
}

/** Parses the first HTTP/1.1 answer in `text`. */
export function parseAnswer(text: string, ms: number): RawAnswer {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = end < 0 ? '' : text.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), head, headers, body, json, ms };
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) return out;
    const size = parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/**
 * Sends `parts` over a bare TCP connection, waiting `gapMs` between parts, and resolves with the
 * first complete answer (or whatever came before the server closed). Stops sending once the
 * server has answered: a server that answers early is the point of several tests.
 */
export function rawExchange(
  baseUrl: string,
  parts: ReadonlyArray<string | Buffer>,
  options: { gapMs?: number; timeoutMs?: number; keepSending?: boolean } = {},
): Promise<RawAnswer & { sentBytes: number; closedByServer: boolean }> {
  const { hostname, port } = new URL(baseUrl);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let received = '';
    let sentBytes = 0;
    let done = false;
    let closedByServer = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseAnswer(received, Date.now() - started), sentBytes, closedByServer });
    };
    const timer = setTimeout(() => {
      if (received === '') {
        done = true;
        socket.destroy();
        reject(new Error(`no answer within ${options.timeoutMs ?? 10000} ms (sent ${sentBytes} bytes)`));
      } else finish();
    }, options.timeoutMs ?? 10000);
    socket.on('error', () => finish());
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const answer = parseAnswer(received, 0);
      const length = Number(answer.headers['content-length'] ?? NaN);
      if (Number.isFinite(length) && Buffer.byteLength(answer.body, 'latin1') >= length) finish();
    });
    socket.on('end', () => {
      closedByServer = true;
      finish();
    });
    socket.on('close', () => {
      closedByServer = true;
      finish();
    });
    socket.once('connect', async () => {
      for (const part of parts) {
        if (done || (received !== '' && options.keepSending !== true)) break;
        const ok = socket.write(part);
        sentBytes += Buffer.byteLength(part);
        if (!ok) await new Promise((r) => socket.once('drain', r));
        if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
      }
    });
  });
}

/** A complete HTTP/1.1 request as text. */
export function httpRequest(method: string, path: string, host: string, headers: Record<string, string>, body = ''): string {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
