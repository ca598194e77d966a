import type { Duplex } from 'node:stream';
import type { ErrorCode } from '../error-codes.js';
import { errorBody } from '../errors.js';
import { isEventStreamSocket } from '../sse/sse-stream.js';

/**
 * Answers what Node's HTTP parser refuses before Koa ever sees a request: headers over the size
 * limit (431, RFC 6585 §5), a request that did not arrive in time (408, the slowloris defence of
 * `headersTimeout`/`requestTimeout`), or bytes that are not HTTP, including ambiguous framing such
 * as both Content-Length and Transfer-Encoding (400, RFC 9112 §6.1: request smuggling). Node's
 * own answers to these carry no body; ours carry the same `{ error, error_description }` JSON as
 * every other refusal, so a client can switch on the code. The connection is always closed: after
 * a framing error nothing more on it can be trusted.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const pending = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  // An event stream writes its head to the socket itself, so `headersSent` does not know about it.
  if (error.code === 'ECONNRESET' || !socket.writable || pending?.headersSent === true || isEventStreamSocket(socket)) {
    socket.destroy();
    return;
  }
  const [status, reason, code, description] = describe(error.code);
  answerRaw(socket, status, reason, code, description);
}

/**
 * Answers a `CONNECT` request. Node hands CONNECT (the proxy-tunnel method, RFC 9110 §9.3.6) to the
 * server's `connect` event instead of the request handler, and closes the socket unanswered when
 * nobody listens; this server is not a proxy, so it answers 501 like any other method it does not
 * implement.
 */
export function answerConnect(_request: unknown, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  answerRaw(socket, 501, 'Not Implemented', 'not_implemented', 'This server is not a proxy: CONNECT is not implemented.');
}

/** Writes a whole HTTP/1.1 answer with the JSON error body on a raw socket, then closes it. */
function answerRaw(socket: Duplex, status: number, reason: string, code: ErrorCode, description: string): void {
  const body = JSON.stringify(errorBody(code, description));
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Cache-Control: no-store\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      'Connection: close\r\n\r\n' +
      body,
  );
  // Do not wait for a client that never reads its answer.
  setTimeout(() => socket.destroy(), 1000).unref();
}

function describe(code: string | undefined): [status: number, reason: string, code: ErrorCode, description: string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'Request Header Fields Too Large', 'header_too_large', 'The request headers are too large.'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'Request Timeout', 'request_timeout', 'The request did not arrive in time.'];
    default:
      return [400, 'Bad Request', 'bad_request', 'The request is not valid HTTP/1.1.'];
  }
}
