import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';

export type StreamEndReason = 'client_gone' | 'slow_consumer' | 'server';

/** Told once, however the stream ends (the subscriber session). */
export interface StreamEndListener {
  streamEnded(reason: StreamEndReason): void;
}

export interface SseStreamOptions {
  /**
   * Bytes that may wait in user space for a slow client (the response's and socket's buffers;
   * the kernel's socket buffer comes on top). Past it the stream is cut: the client can resume
   * with Last-Event-ID, and one stalled reader never holds more than this much memory. Over
   * HTTP/2 `writableLength` is the stream's own queue, which grows once the client's
   * flow-control window is used up (RFC 9113 §5.2).
   */
  readonly maxBufferedBytes: number;
  /** The status line and the headers every stream of the route shares, built once. */
  readonly head: SseHead;
}

/** The response headers of every event stream. */
const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Type': 'text/event-stream; charset=utf-8',
  // no-transform: proxies must not compress or rewrite the stream (RFC 9111 §5.2.2.6).
  'Cache-Control': 'no-cache, no-store, no-transform',
  // nginx buffers proxied responses unless told not to.
  'X-Accel-Buffering': 'no',
});

/** What a header value may hold (RFC 9110 §5.5: visible characters, spaces and tabs; Node's own check). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function checkField(name: string, value: string): void {
  if (!FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) throw new TypeError(`not a valid response header: ${JSON.stringify(name)}`);
}

/**
 * The head of every stream of one route, serialised once: the status line and the headers that
 * do not change from one stream to the next (the SSE headers above plus what the route adds,
 * security headers say). Over HTTP/1.1 it goes to the socket as one Buffer, with the few lines
 * that do change (`open`'s `headers`) and the first event behind it in the same write.
 */
export class SseHead {
  readonly http1: Buffer;
  readonly fields: Readonly<Record<string, string>>;

  constructor(extra: Readonly<Record<string, string>> = {}) {
    this.fields = Object.freeze({ ...SSE_HEADERS, ...extra });
    let text = 'HTTP/1.1 200 OK\r\n';
    for (const [name, value] of Object.entries({ ...this.fields, Connection: 'close' })) {
      checkField(name, value);
      text += `${name}: ${value}\r\n`;
    }
    this.http1 = Buffer.from(text, 'latin1');
  }
}

/** `Date` (RFC 9110 §6.6.1), formatted at most once a second. */
let dateSecond = -1;
let dateText = '';
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** Sockets whose response head this module wrote itself (see `isEventStreamSocket`). */
const directSockets = new WeakSet<Socket>();

/**
 * True when an event stream owns `socket`: its head went out without Node's response knowing
 * (`res.headersSent` is false), so nothing else may write an answer on it, a parser error's
 * 400 included (`http/client-error.ts`).
 */
export function isEventStreamSocket(socket: unknown): boolean {
  return directSockets.has(socket as Socket);
}

/**
 * Write coalescing (issue 12). Everything JavaScript does between two turns of the event loop is
 * one "turn" here. A stream's first frame in a turn goes to the socket at once (one event: no
 * added latency); a second frame in the same turn corks the socket, and every frame after it waits
 * in user space until the turn ends, when all corked sockets are uncorked: those frames leave in
 * one `writev` per socket. A burst of events (a Redis read of many entries, publishes that arrive
 * together, a replay) costs each subscriber two system calls instead of one per event.
 */
let turn = 0;
let turnEndScheduled = false;
const corkedThisTurn: Socket[] = [];

function endTurn(): void {
  turnEndScheduled = false;
  turn++;
  for (const socket of corkedThisTurn) socket.uncork();
  corkedThisTurn.length = 0;
}

/** The stream a response belongs to: the `close` listener is one shared function, not a closure per stream. */
const STREAM = Symbol('sseStream');
type OwnedResponse = (ServerResponse | Http2ServerResponse) & { [STREAM]?: SseStream };

function onResponseClose(this: OwnedResponse): void {
  this[STREAM]?.clientGone();
}

/**
 * The transport of one event stream: headers, writes straight to the socket, the buffer bound and
 * the close. It knows nothing about events, auth or the bus: it moves bytes.
 *
 * Over HTTP/1.x the body is close-delimited (RFC 9112 §6.3, rule 8: no Content-Length, no
 * Transfer-Encoding, `Connection: close`), which an event stream is anyway: it ends when the
 * connection does. So the head (one pre-built Buffer and the lines that vary) and then every frame
 * go to the socket as they are, one `write` per frame, past Node's response object entirely: no
 * header map, no serialised header string kept for the life of the stream, no chunking work (cork,
 * three writes, uncork on the next tick; issue 5). When a client reads slower than events come,
 * the frames queue in the socket and leave together in one `writev` once it drains. Over HTTP/2
 * the stream frames its own DATA and connection-specific headers are forbidden (RFC 9113 §8.2.2):
 * head and frames go through the response, as they do for HEAD and for a pipelined response that
 * has no socket yet.
 *
 * Per stream it holds a few fields and no closure: the response's `close` listener is shared.
 */
export class SseStream {
  private ended = false;
  private endListener: StreamEndListener | undefined;
  /** Set only while a catch-up writer waits for the socket to drain (`drained`). */
  private drainWaiter: (() => void) | undefined;
  /** Where frames go once the head is sent: the socket itself, or the response. */
  private out: Writable;
  /** The socket, when the head and every frame go to it directly. */
  private socket: Socket | undefined;
  /** The turn of the last frame written to `socket` (see `endTurn`). */
  private lastTurn = -1;
  /** The turn in which `socket` was last corked. */
  private corkedTurn = -1;
  /** Bytes corked in the current turn: on their way out, so not what a slow reader left waiting. */
  private corkedBytes = 0;
  /**
   * Typed as HTTP/1.1's response: an `Http2ServerResponse` has every member used here (write,
   * end, destroy, writableLength, writeHead, flushHeaders; @types/node omits only the last).
   */
  private readonly res: ServerResponse;

  constructor(
    res: ServerResponse | Http2ServerResponse,
    private readonly options: SseStreamOptions,
  ) {
    this.res = res as ServerResponse;
    this.out = this.res;
    (res as OwnedResponse)[STREAM] = this;
    // `on`, not `once`: `once` wraps the listener in a closure of its own; a second call is a no-op.
    res.on('close', onResponseClose);
  }

  /**
   * Sends the head and the first event in one write, so the client sees the stream open.
   * @param headers the header lines that differ per stream, as `[name, value, name, value, ...]`.
   */
  open(headers: readonly string[], first: string): void {
    if (this.ended) return;
    for (let i = 0; i < headers.length; i += 2) checkField(headers[i]!, headers[i + 1]!);
    const { head } = this.options;
    if ('stream' in this.res) {
      // HTTP/2: `res.socket` stands for the connection that every stream of the session shares
      // (its setTimeout is the session's), so leave it alone and lift only this stream's timeout.
      // Setting the session's to 0 would also switch off the idle-connection timeout of
      // `http/listener.ts` for good, long after this stream ended.
      (this.res as unknown as Http2ServerResponse).stream.setTimeout(0);
      this.res.writeHead(200, withLines(head.fields, headers));
      this.res.write(first);
      return;
    }
    const socket = this.res.socket;
    if (socket !== null) {
      // Idle streams are kept alive by heartbeats, not by the socket's inactivity timeout.
      socket.setTimeout(0);
      socket.setNoDelay(true);
    }
    // A HEAD response has no body, and a pipelined response may not have its socket yet: both go
    // through the response, which drops or queues the bytes in order.
    if (socket === null || this.res.req.method === 'HEAD' || this.res.headersSent) {
      this.res.removeHeader('Transfer-Encoding');
      this.res.writeHead(200, withLines({ ...head.fields, Connection: 'close' }, headers));
      this.res.write(first);
      return;
    }
    let lines = '';
    for (let i = 0; i < headers.length; i += 2) lines += `${headers[i]}: ${headers[i + 1]}\r\n`;
    directSockets.add(socket);
    this.socket = socket;
    this.out = socket;
    socket.cork();
    socket.write(head.http1);
    socket.write(`${lines}Date: ${httpDate()}\r\n\r\n${first}`);
    socket.uncork();
  }

  /**
   * Writes bytes, or cuts the stream when the client has fallen too far behind.
   * @returns false when the stream is (now) closed.
   */
  write(chunk: Buffer | string): boolean {
    if (this.ended) return false;
    const socket = this.socket;
    if (socket === undefined) {
      if (this.res.writableLength > this.options.maxBufferedBytes) return this.cut();
      this.res.write(chunk);
      return true;
    }
    if (this.lastTurn !== turn) {
      this.lastTurn = turn;
      this.corkedBytes = 0;
      if (!turnEndScheduled) {
        turnEndScheduled = true;
        setImmediate(endTurn);
      }
    } else if (this.corkedTurn !== turn) {
      this.corkedTurn = turn;
      socket.cork();
      corkedThisTurn.push(socket);
    }
    if (socket.writableLength - this.corkedBytes > this.options.maxBufferedBytes) return this.cut();
    if (this.corkedTurn === turn) this.corkedBytes += chunk.length;
    socket.write(chunk);
    return true;
  }

  /** A reader that stopped reading: `maxBufferedBytes` wait for it. */
  private cut(): false {
    this.finish('slow_consumer');
    (this.socket ?? this.res).destroy();
    return false;
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
    // A head written to the socket directly ends with the socket: `res.end` would write a head of its own.
    const out: Writable = this.socket ?? this.res;
    if (last === undefined) out.end();
    else out.end(last);
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Tells `listener` once, however the stream ends. */
  onEnd(listener: StreamEndListener): void {
    this.endListener = listener;
  }

  /** The response's `close`: the client left (or the connection was cut). */
  clientGone(): void {
    this.finish('client_gone');
  }

  private finish(reason: StreamEndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.drainWaiter?.();
    const listener = this.endListener;
    this.endListener = undefined;
    listener?.streamEnded(reason);
  }
}

function withLines(fields: Readonly<Record<string, string>>, lines: readonly string[]): Record<string, string> {
  const all: Record<string, string> = { ...fields };
  for (let i = 0; i < lines.length; i += 2) all[lines[i]!] = lines[i + 1]!;
  return all;
}
