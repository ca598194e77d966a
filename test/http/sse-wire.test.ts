import { expect } from 'chai';
import { frameEvent } from '../../src/sse/frame.js';
import { connectedEvent } from '../../src/streams/control-events.js';
import { expectSseEventMatchesSpec } from '../helpers/openapi.js';
import { postJson, startServer, type TestServer } from '../helpers/server.js';
import { openTcpStream } from '../helpers/streams.js';

/**
 * Issue 5: the fast path writes each event's shared frame straight to the socket, in a
 * close-delimited body. These tests read the raw bytes off a TCP socket and compare them with what
 * `frameEvent` produces, so no chunk framing, re-encoding or extra byte can slip in.
 */
const ALLOWED = 'https://app.example';

/** The headers of an HTTP/1.1 head, lower-cased, Date and X-Request-Id (which vary) left out. */
function headerLines(head: string): string[] {
  return head
    .split('\r\n')
    .slice(1)
    .filter((line) => line !== '' && !/^(date|x-request-id):/i.test(line))
    .map((line) => line.toLowerCase())
    .sort();
}

describe('SSE on the wire (issue 5)', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ CORS_ORIGINS: ALLOWED });
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
  });
  after(() => t.close());

  it('sends a close-delimited HTTP/1.1 body whose bytes are exactly the frames frameEvent produces', async () => {
    const alice = await t.login('alice');
    const publisher = await t.login('newsroom');
    const stream = await openTcpStream(t.url, '/events?topic=public/news', alice.access_token);
    try {
      // The connected event is the last thing sent before going live; its data ends with `}`.
      const opened = await stream.readUntil('}\n\n');
      const head = opened.slice(0, opened.indexOf('\r\n\r\n') + 4);
      expect(head.startsWith('HTTP/1.1 200 ')).to.equal(true);
      const headers = head.toLowerCase();
      expect(headers).to.include('\r\nconnection: close\r\n');
      expect(headers).not.to.include('transfer-encoding');
      expect(headers).not.to.include('content-length');

      const connected = JSON.parse(/^data: (.*)$/m.exec(opened.slice(head.length))![1]!) as {
        connectionId: string;
        expiresAt: string;
        heartbeatMs: number;
      };
      const expectedConnected = connectedEvent(t.config.streams.retryMs, {
        connectionId: connected.connectionId,
        topics: ['public/news'],
        expiresAt: Date.parse(connected.expiresAt) / 1000,
        renewUrl: `/events/connections/${connected.connectionId}/token`,
        heartbeatMs: connected.heartbeatMs,
      });
      expect(opened.slice(head.length)).to.equal(expectedConnected);

      const data = { text: 'héllo\nwörld', n: [1, 2, 3] };
      const first = await postJson(`${t.url}/events`, { topics: ['public/news'], type: 'greeting', data }, publisher.access_token);
      const { id } = (await first.json()) as { id: string };
      const second = await postJson(`${t.url}/events`, { topics: ['public/news'], data: 'two' }, publisher.access_token);
      const { id: id2 } = (await second.json()) as { id: string };

      const all = await stream.readUntil('"two"}\n\n');
      const wire = Buffer.from(all.slice(opened.length), 'latin1');
      const expected = Buffer.from(
        frameEvent({ id, event: 'greeting', data: JSON.stringify({ topic: 'public/news', data }) }) +
          frameEvent({ id: id2, event: 'message', data: '{"topic":"public/news","data":"two"}' }),
        'utf8',
      );
      expect(wire.equals(expected)).to.equal(true, `on the wire: ${JSON.stringify(wire.toString('utf8'))}`);
      // The data of a published event is the documented envelope.
      const firstData = /^data: (.*)$/m.exec(wire.toString('utf8'))![1]!;
      expectSseEventMatchesSpec('greeting', JSON.parse(firstData), id);
    } finally {
      stream.socket.destroy();
    }
  });

  it('serves the stream for the absolute form of the request target too (RFC 9112 §3.2.2), through Koa', async () => {
    const alice = await t.login('alice');
    const stream = await openTcpStream(t.url, `${t.url}/events?topic=public/news`, alice.access_token);
    try {
      const opened = await stream.readUntil('}\n\n');
      expect(opened.startsWith('HTTP/1.1 200 ')).to.equal(true);
      expect(opened).to.include('\r\n\r\nretry: ');
      expect(opened).to.include('event: connected');
    } finally {
      stream.socket.destroy();
    }
  });

  // Issue 12: the stream is served before Koa, its head written as one pre-built buffer. It must
  // carry what Koa's middleware puts on every other answer: the security headers, Vary, the
  // request id, and CORS for an allowed origin only.
  for (const origin of [ALLOWED, 'https://evil.example', undefined]) {
    it(`opens the stream with the headers every answer carries, and CORS only for an allowed origin (Origin: ${origin ?? 'none'})`, async () => {
      const alice = await t.login('alice');
      const stream = await openTcpStream(t.url, '/events?topic=public/news', alice.access_token, origin === undefined ? {} : { origin });
      try {
        const opened = await stream.readUntil('}\n\n');
        const head = opened.slice(0, opened.indexOf('\r\n\r\n') + 4);
        const cors =
          origin === ALLOWED
            ? [
                `access-control-allow-origin: ${ALLOWED}`,
                'access-control-allow-credentials: true',
                'access-control-expose-headers: retry-after,www-authenticate,x-request-id',
              ]
            : [];
        expect(headerLines(head)).to.deep.equal(
          [
            'content-type: text/event-stream; charset=utf-8',
            'cache-control: no-cache, no-store, no-transform',
            'x-accel-buffering: no',
            'connection: close',
            'x-content-type-options: nosniff',
            'referrer-policy: no-referrer',
            'x-frame-options: deny',
            'cross-origin-resource-policy: same-origin',
            "content-security-policy: default-src 'none'; frame-ancestors 'none'",
            'vary: origin',
            ...cors,
          ].sort(),
        );
        expect(head).to.match(/\r\nX-Request-Id: [0-9a-f-]{36}\r\n/);
        expect(head).to.match(/\r\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/);
        // A refusal of the same request is Koa's answer, with the same CORS decision.
        const refused = await fetch(`${t.url}/events?topic=public/news`, {
          headers: { authorization: 'Bearer x.y.z', ...(origin === undefined ? {} : { origin }) },
        });
        expect(refused.status).to.equal(401);
        expect(refused.headers.get('access-control-allow-origin')).to.equal(origin === ALLOWED ? ALLOWED : null);
        await refused.arrayBuffer();
      } finally {
        stream.socket.destroy();
      }
    });
  }
});
