import type { ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';

export type StreamEndReason = 'client_gone' | 'slow_consumer' | 'server';

export interface SseStreamOptions {
  /**
   * Bytes that may wait in user space for a slow client (the response's and socket's buffers;
   * the kernel's socket buffer comes on top). Past it the stream is cut: the client can resume
   * with Last-Event-ID, and one stalled reader never holds more than this much memory.
   */
  readonly maxBufferedBytes: number;
}

/** The response headers of every event stream. */
export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
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
 * The body is close-delimited (RFC 9112 §6.3, rule 8: no Content-Length, no Transfer-Encoding,
 * `Connection: close`), which an event stream is anyway: it ends when the connection does. So a
 * frame needs no chunk header and goes to the socket as is, one `write` per frame, and Node's
 * per-write chunking work (cork, three writes, uncork on the next tick) is skipped (issue 5). When
 * a client reads slower than events come, the frames queue in the socket and leave together in
 * one `writev` once it drains.
 */
export class SseStream {
  private ended = false;
  private endListener: ((reason: StreamEndReason) => void) | undefined;
  /** Where frames go once the head is sent: the socket itself, or the response when it has none. */
  private out: Writable;

  constructor(
    private readonly res: ServerResponse,
    private readonly options: SseStreamOptions,
  ) {
    this.out = res;
    res.once('close', this.onResponseClose);
  }

  /** Sends the status line and headers at once, so the client sees the stream open. */
  open(extraHeaders: Readonly<Record<string, string>> = {}): void {
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
    const listener = this.endListener;
    this.endListener = undefined;
    listener?.(reason);
  }
}
