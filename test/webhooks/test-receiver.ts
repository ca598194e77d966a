import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: string;
}

/** Answers each request; the default is 204. Not answering at all leaves the request hanging. */
export type ReceiverHandler = (request: ReceivedRequest, response: ServerResponse, index: number) => void;

/** A real HTTP webhook receiver on loopback, recording what it gets. */
export class TestReceiver {
  readonly requests: ReceivedRequest[] = [];
  handler: ReceiverHandler = (_request, response) => response.writeHead(204).end();

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<TestReceiver> {
    const server = http.createServer();
    const receiver = new TestReceiver(server);
    server.on('request', (incoming, response) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => {
        const request = {
          method: incoming.method ?? '',
          path: incoming.url ?? '',
          headers: incoming.headers,
          rawBody: Buffer.concat(chunks).toString(),
        };
        receiver.requests.push(request);
        receiver.handler(request, response, receiver.requests.length - 1);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/notify`;
  }

  /** Polls until `condition` holds; fails after `timeoutMs` (generous: the machine is shared). */
  async waitFor(condition: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A loopback port nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
