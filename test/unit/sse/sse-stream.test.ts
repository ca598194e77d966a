import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { SseHead, SseStream } from '../../../src/sse/sse-stream.js';

/**
 * The transport on a real socket: a real HTTP server hands its response to an SseStream, a raw
 * TCP client reads the bytes. The socket's `_write` and `_writev` (what Node calls once per
 * system call's worth of data) are counted to see how the frames left.
 */
async function withStream(
  maxBufferedBytes: number,
  run: (stream: SseStream, writes: { single: number; vector: number }, received: () => string, stopReading: () => void) => Promise<void>,
): Promise<void> {
  let stream: SseStream | undefined;
  const writes = { single: 0, vector: 0 };
  const server = http.createServer((_req, res) => {
    const socket = res.socket as net.Socket & { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };
    const single = socket._write.bind(socket);
    const vector = socket._writev.bind(socket);
    socket._write = (...args) => {
      writes.single++;
      single(...args);
    };
    socket._writev = (...args) => {
      writes.vector++;
      vector(...args);
    };
    stream = new SseStream(res, { maxBufferedBytes, head: new SseHead({ 'X-Test': 'yes' }) });
    stream.open(['X-Request-Id', 'r-1'], 'event: connected\ndata: {}\n\n');
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  let text = '';
  client.setEncoding('latin1');
  client.on('data', (chunk: string) => (text += chunk));
  client.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
  try {
    const deadline = Date.now() + 5000;
    while (!text.includes('event: connected\ndata: {}\n\n') && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 5));
    await run(
      stream!,
      writes,
      () => text,
      () => client.pause(),
    );
  } finally {
    client.destroy();
    server.close();
  }
}

const until = async (check: () => boolean) => {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

describe('SseStream', () => {
  it('sends the pre-built head, the varying lines and the first event in one write', async () => {
    await withStream(1 << 20, async (_stream, writes, received) => {
      const text = received();
      expect(text.startsWith('HTTP/1.1 200 OK\r\n')).to.equal(true);
      expect(text).to.include('\r\nX-Test: yes\r\n');
      expect(text).to.include('\r\nConnection: close\r\n');
      expect(text).to.include('\r\nX-Request-Id: r-1\r\n');
      expect(text).to.match(/\r\n\r\nevent: connected\ndata: \{\}\n\n$/);
      // The head's two parts left corked together: one system call.
      expect(writes).to.deep.equal({ single: 0, vector: 1 });
    });
  });

  it('writes the first frame of a turn at once and coalesces the rest of the turn into one writev', async () => {
    await withStream(1 << 20, async (stream, writes, received) => {
      writes.single = 0;
      writes.vector = 0;
      const frames = Array.from({ length: 20 }, (_, i) => Buffer.from(`id: ${i}\ndata: ${i}\n\n`));
      for (const frame of frames) expect(stream.write(frame)).to.equal(true);
      const all = frames.map((frame) => frame.toString()).join('');
      await until(() => received().endsWith(all));
      expect(writes).to.deep.equal({ single: 1, vector: 1 });
      // A frame in a later turn goes out at once again.
      await new Promise((resolve) => setImmediate(resolve));
      stream.write(Buffer.from('id: 20\ndata: 20\n\n'));
      await until(() => received().endsWith('id: 20\ndata: 20\n\n'));
      expect(writes.single).to.equal(2);
    });
  });

  it('does not count the bytes of its own turn against a reader that reads: a burst bigger than the bound is delivered', async () => {
    await withStream(4096, async (stream, _writes, received) => {
      const frame = Buffer.from(`data: ${'x'.repeat(1000)}\n\n`);
      for (let i = 0; i < 12; i++) expect(stream.write(frame), `frame ${i}`).to.equal(true);
      await until(() => received().split('data: x').length - 1 === 12);
      expect(stream.closed).to.equal(false);
    });
  });

  it('cuts a reader that does not read once more than the bound waits for it', async () => {
    await withStream(4096, async (stream, _writes, _received, stopReading) => {
      stopReading();
      // Fill the kernel's buffers turn after turn until user space holds the rest.
      const frame = Buffer.from(`data: ${'x'.repeat(64 * 1024)}\n\n`);
      const reasons: string[] = [];
      stream.onEnd({ streamEnded: (reason) => reasons.push(reason) });
      for (let i = 0; i < 2000 && !stream.closed; i++) {
        stream.write(frame);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(reasons).to.deep.equal(['slow_consumer']);
    });
  });
});
