import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { ConfigError } from '../config.js';
import { answerClientError, answerConnect } from './client-error.js';
import { loadTlsCredentials } from './tls-credentials.js';

/** The TLS listener, with the connection controls that `http.Server` has and `Http2SecureServer` lacks. */
type SecureListener = Http2SecureServer & {
  headersTimeout: number;
  requestTimeout: number;
  /** Destroys every connection at once (end of the shutdown grace). */
  closeAllConnections(): void;
  /** Sends GOAWAY to every HTTP/2 session, so idle ones close and busy ones finish their streams. */
  closeIdleConnections(): void;
};

export type Listener = Server | SecureListener;

type Handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => unknown;

/** Slowloris: headers within 15 s, a whole request within 30 s (streams are GETs, received at once). */
const HEADERS_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Node checks the two timeouts only this often (30 s by default, which lets a slow client live 45 s). */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

/**
 * The listening server: plain HTTP/1.1, or, given a certificate and key, HTTPS that speaks HTTP/2
 * and falls back to HTTP/1.1 on the same port (ALPN, RFC 7301). SSE over HTTP/2 lifts the
 * browser's six-connections-per-host limit on HTTP/1.1. Either way, parser errors, oversized
 * headers and timeouts are answered with a JSON error code (`client-error.ts`).
 */
export function createListener(handler: Handler, tls: { certFile: string; keyFile: string } | undefined): Listener {
  if (tls === undefined) {
    const http = createHttpServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, handler);
    http.headersTimeout = HEADERS_TIMEOUT_MS;
    http.requestTimeout = REQUEST_TIMEOUT_MS;
    http.on('clientError', answerClientError);
    http.on('connect', answerConnect);
    return http;
  }
  const { cert, key } = loadTlsCredentials(tls);
  let secure: SecureListener;
  try {
    secure = createSecureServer(
      {
        allowHTTP1: true,
        cert,
        key,
        // TLS 1.2 is the floor (RFC 9325 §3.1.1; OWASP ASVS V9.1.2); Node's default ciphers are kept.
        minVersion: 'TLSv1.2',
      },
      handler as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
    ) as SecureListener;
  } catch (error) {
    // What OpenSSL still refuses after loadTlsCredentials' checks (a key below its security level, say).
    throw new ConfigError('TLS_CERT_FILE', `${tls.certFile} with TLS_KEY_FILE ${tls.keyFile} cannot be used (${(error as Error).message})`);
  }
  // With allowHTTP1 Node applies these to HTTP/1.1 connections exactly as http.Server does.
  (secure as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = CONNECTIONS_CHECKING_INTERVAL_MS;
  secure.headersTimeout = HEADERS_TIMEOUT_MS;
  secure.requestTimeout = REQUEST_TIMEOUT_MS;
  secure.on('clientError', answerClientError);
  secure.on('connect', answerConnect);
  // A TLS handshake that never completes holds a socket too.
  secure.on('tlsClientError', (_error: Error, socket: Socket) => socket.destroy());

  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  secure.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  secure.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // An HTTP/2 connection that holds no stream for `headersTimeout` is closed (GOAWAY): the
    // HTTP/2 form of slowloris is a connection opened and left idle. A session with an open
    // stream (an event stream, say) is left alone; a slow request body has its own deadline
    // (`request-body.ts`).
    let open = 0;
    session.on('stream', (stream: ServerHttp2Stream) => {
      open++;
      stream.once('close', () => open--);
    });
    session.setTimeout(secure.headersTimeout, () => {
      if (open === 0) session.close();
    });
  });
  secure.closeAllConnections = () => {
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
  };
  secure.closeIdleConnections = () => {
    for (const session of sessions) session.close();
  };
  return secure;
}
