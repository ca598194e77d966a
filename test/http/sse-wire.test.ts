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
describe('SSE on the wire (issue 5)', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
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
});
