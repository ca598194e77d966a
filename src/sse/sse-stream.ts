import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Writable } from 'node:stream';

export type StreamEndReason = 'client_gone' | 'slow_consumer' | 'server';

export interface SseStreamOptions {
  /**
   * Bytes that may wait in user space for a slow client (the response's and socket's buffers;
   * the kernel's socket buffer comes on top). Past it the stream is cut: the client can resume
   * with Last-Event-ID, and one stalled reader never holds more than this much memory. Over
   * HTTP/2 `writableLength` is the stream's own queue, which grows once the client's
   * flow-control window is used up (RFC 9113 §5.2).
   */
  readonly maxBufferedBytes: number;
}

/** The response headers of every event stream. */
const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Type': 'text/event-stream; charset=utf-8',
  // no-transform: proxies must not compress or rewrite the stream (RFC 9111 §5.2.2.6).
  'Cache-Control': 'no-cache, no-store, no-transform',
  // nginx buffers proxied responses unless told not to.
  'X-Accel-Buffering': 'no',
});

/**
 * The transport of one event stream: headers, writes straight to the socket, the buffer bound and
 * the close. It knows nothing about events, auth or the bus: it moves bytes.
 *
 * Over HTTP/1.x the body is close-delimited (RFC 9112 §6.3, rule 8: no Content-Length, no
 * Transfer-Encoding, `Connection: close`), which an event stream is anyway: it ends when the
 * connection does. So a frame needs no chunk header and goes to the socket as is, one `write` per
 * frame, and Node's per-write chunking work (cork, three writes, uncork on the next tick) is
 * skipped (issue 5). When a client reads slower than events come, the frames queue in the socket
 * and leave together in one `writev` once it drains. Over HTTP/2 the stream frames its own DATA
 * and connection-specific headers are forbidden (RFC 9113 §8.2.2): frames go through the response.
 */
export class SseStream {
  private ended = false;
  private endListener: ((reason: StreamEndReason) => void) | undefined;
  /** Set only while a catch-up writer waits for the socket to drain (`drained`). */
  private drainWaiter: (() => void) | undefined;
  /** Where frames go once the head is sent: the socket itself, or the response when it has none. */
  private out: Writable;

  /**
   * Typed as HTTP/1.1's response: an `Http2ServerResponse` has every member used here (write,
   * end, destroy, writableLength, writeHead, flushHeaders; @types/node omits only the last).
   */
  private readonly res: ServerResponse;
  private readonly http2: Http2ServerResponse | undefined;

  constructor(
    res: ServerResponse | Http2ServerResponse,
    private readonly options: SseStreamOptions,
  ) {
    this.res = res as ServerResponse;
    this.http2 = 'stream' in res ? res : undefined;
    this.out = this.res;
    res.once('close', this.onResponseClose);
  }

  /** Sends the status line and headers at once, so the client sees the stream open. */
  open(extraHeaders: Readonly<Record<string, string>> = {}): void {
    if (this.http2 !== undefined) {
      // HTTP/2: `res.socket` stands for the connection that every stream of the session shares
      // (its setTimeout is the session's), so leave it alone and lift only this stream's timeout.
      // Setting the session's to 0 would also switch off the idle-connection timeout of
      // `http/listener.ts` for good, long after this stream ended.
      this.http2.stream.setTimeout(0);
      this.res.writeHead(200, { ...SSE_HEADERS, ...extraHeaders });
      this.res.flushHeaders();
      return;
    }
    const socket = this.res.socket;
    if (socket !== null) {
      // Idle streams are kept alive by heartbeats, not by the socket's inactivity timeout.
      socket.setTimeout(0);
      socket.setNoDelay(true);
    }
    this.res.removeHeader('Transfer-Encoding');
    this.res.writeHead(200, { ...SSE_HEADERS, Connection: 'close', ...extraHeaders });
    this.res.flushHeaders();
    // A HEAD response has no body, and a pipelined response may not have its socket yet: both keep
    // writing through the response, which ignores or queues the bytes in order.
    if (socket !== null && this.res.req.method !== 'HEAD') this.out = socket;
  }

  /**
   * Writes bytes, or cuts the stream when the client has fallen too far behind.
   * @returns false when the stream is (now) closed.
   */
  write(chunk: Buffer | string): boolean {
    if (this.ended) return false;
    if (this.out.writableLength > this.options.maxBufferedBytes) {
      this.finish('slow_consumer');
      this.res.destroy();
      return false;
    }
    this.out.write(chunk);
    return true;
  }

  /**
   * True while more bytes wait in user space than the transport's own buffer size: a writer with
   * many frames to send (a replay) should wait for `drained` before writing more, so that catch-up
   * goes at the reader's pace and never trips `maxBufferedBytes`, which is for readers that stop.
   */
  get congested(): boolean {
    return !this.ended && this.out.writableLength >= this.out.writableHighWaterMark;
  }

  /** Resolves once the waiting bytes have gone to the socket, or the stream has ended. */
  drained(): Promise<void> {
    if (!this.congested) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.out.off('drain', done);
        this.drainWaiter = undefined;
        resolve();
      };
      this.drainWaiter = done;
      this.out.once('drain', done);
    });
  }

  /** Ends the stream after writing `last` (a final event). */
  end(last?: Buffer | string): void {
    if (this.ended) return;
    this.finish('server');
    if (last === undefined) this.res.end();
    else this.res.end(last);
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Called once, however the stream ends. */
  onEnd(listener: (reason: StreamEndReason) => void): void {
    this.endListener = listener;
  }

  private readonly onResponseClose = (): void => {
    this.finish('client_gone');
  };

  private finish(reason: StreamEndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.drainWaiter?.();
    const listener = this.endListener;
    this.endListener = undefined;
    listener?.(reason);
  }
}
