import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

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
export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Type': 'text/event-stream; charset=utf-8',
  // no-transform: proxies must not compress or rewrite the stream (RFC 9111 §5.2.2.6).
  'Cache-Control': 'no-cache, no-store, no-transform',
  // nginx buffers proxied responses unless told not to.
  'X-Accel-Buffering': 'no',
});

/**
 * The transport of one event stream: headers, writes straight to the response, the buffer bound
 * and the close. It knows nothing about events, auth or the bus: it moves bytes.
 */
export class SseStream {
  private ended = false;
  private endListener: ((reason: StreamEndReason) => void) | undefined;

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
    } else {
      const socket = this.res.socket;
      if (socket !== null) {
        // Idle streams are kept alive by heartbeats, not by the socket's inactivity timeout.
        socket.setTimeout(0);
        socket.setNoDelay(true);
      }
    }
    this.res.writeHead(200, { ...SSE_HEADERS, ...extraHeaders });
    this.res.flushHeaders();
  }

  /**
   * Writes bytes, or cuts the stream when the client has fallen too far behind.
   * @returns false when the stream is (now) closed.
   */
  write(chunk: Buffer | string): boolean {
    if (this.ended) return false;
    if (this.res.writableLength > this.options.maxBufferedBytes) {
      this.finish('slow_consumer');
      this.res.destroy();
      return false;
    }
    this.res.write(chunk);
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
