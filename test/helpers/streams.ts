import net from 'node:net';
import { expect } from 'chai';
import { CONTROL_EVENT_TYPES } from '../../src/streams/control-events.js';
import type { ResponseLike } from './openapi.js';
import { delay, postJson, type StreamClient } from './server.js';

/**
 * Helpers for the stream tests: raw (byte-level) access to `GET /events`, JSON answers in the
 * shape `expectResponseMatchesSpec` takes, and polling.
 */

/** Reads a fetch `Response` whose body is JSON into `{ status, headers, body }`. */
export async function readJson(res: Response): Promise<ResponseLike & { body: any }> {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // keep the text: the assertion that follows shows it
  }
  return { status: res.status, headers: Object.fromEntries(res.headers.entries()), body };
}

/** `GET /events` with fetch (not EventSource), for answers that must not be streams. */
export async function getEvents(
  baseUrl: string,
  query: string,
  token: string | undefined,
  headers: Record<string, string> = {},
): Promise<ResponseLike & { body: any }> {
  const controller = new AbortController();
  const res = await fetch(`${baseUrl}/events${query}`, {
    headers: { accept: 'text/event-stream', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    signal: controller.signal,
  });
  const contentType = res.headers.get('content-type') ?? '';
  if (contentType.startsWith('text/event-stream')) {
    // A stream where an error was expected: do not hang reading it, show what it was.
    controller.abort();
    return { status: res.status, headers: Object.fromEntries(res.headers.entries()), body: '<text/event-stream>' };
  }
  return readJson(res);
}

/** Polls `check` every 10 ms until it returns true. @throws after `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}

/** Publishes and expects 201; returns the event id. */
export async function publish(baseUrl: string, token: string, body: Record<string, unknown>): Promise<string> {
  const res = await postJson(`${baseUrl}/events`, body, token);
  const json = (await res.json()) as { id: string };
  expect(res.status, JSON.stringify(json)).to.equal(201);
  return json.id;
}

/** The events of a `StreamClient` that are not the server's control events. */
export function publishedEvents(stream: StreamClient) {
  const control = new Set<string>(CONTROL_EVENT_TYPES);
  return stream.events.filter((event) => !control.has(event.type));
}

/** A stream read as bytes with fetch: what exactly is on the wire. */
export interface RawStream {
  readonly response: Response;
  /** Everything received so far, decoded as UTF-8. */
  text(): string;
  /** Resolves once the received text satisfies `predicate`. */
  waitForText(predicate: (text: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves when the server ends the body. */
  readonly ended: Promise<void>;
  close(): void;
}

export async function openRawStream(url: string, token: string, headers: Record<string, string> = {}): Promise<RawStream> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, ...headers },
    signal: controller.signal,
  });
  let received = '';
  const decoder = new TextDecoder();
  const waiters = new Set<() => void>();
  const reader = response.body!.getReader();
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += decoder.decode(value, { stream: true });
        for (const wake of waiters) wake();
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    response,
    text: () => received,
    waitForText: (predicate, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        if (predicate(received)) return resolve(received);
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`timed out after ${timeoutMs} ms; received ${JSON.stringify(received)}`));
        }, timeoutMs);
        const wake = () => {
          if (!predicate(received)) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(received);
        };
        waiters.add(wake);
      }),
    ended,
    close: () => controller.abort(),
  };
}

/** A `GET /events` over a bare TCP socket, so the test decides when (and whether) to read. */
export interface TcpStream {
  readonly socket: net.Socket;
  /** Resolves with the bytes read until `marker` appears. */
  readUntil(marker: string, timeoutMs?: number): Promise<string>;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  readonly isClosed: () => boolean;
}

export async function openTcpStream(
  baseUrl: string,
  pathAndQuery: string,
  token: string,
  headers: Record<string, string> = {},
): Promise<TcpStream> {
  const { hostname, port } = new URL(baseUrl);
  const socket = net.connect({ host: hostname, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  let closedFlag = false;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closedFlag = true;
      resolve();
    }),
  );
  socket.write(
    `GET ${pathAndQuery} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${token}\r\n` +
      Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      '\r\n',
  );
  let buffer = '';
  return {
    socket,
    closed,
    isClosed: () => closedFlag,
    readUntil: (marker, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const onData = (chunk: Buffer) => {
          buffer += chunk.toString('latin1');
          if (buffer.includes(marker)) {
            // Stop reading at once: what the test does next decides whether the socket is drained.
            socket.pause();
            clearTimeout(timer);
            socket.off('data', onData);
            resolve(buffer);
          }
        };
        const timer = setTimeout(() => {
          socket.off('data', onData);
          reject(new Error(`timed out waiting for ${JSON.stringify(marker)}; got ${JSON.stringify(buffer)}`));
        }, timeoutMs);
        socket.on('data', onData);
        socket.resume();
      }),
  };
}
