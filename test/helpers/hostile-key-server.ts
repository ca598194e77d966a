import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A key server that misbehaves on purpose, for the external-issuer tests: `/big` streams a JWKS
 * of `bigBytes` (chunked, no Content-Length, so only a running count can stop it), `/hang`
 * accepts the request and never answers, `/redirect` points at `/internal` (which must never be
 * fetched), and every request is recorded with the bytes written to it.
 */
export interface HostileKeyServer {
  readonly url: string;
  /** Paths requested, in order. */
  readonly requests: string[];
  /** Bytes `/big` managed to write before the client went away, per request. */
  readonly bigBytesWritten: number[];
  close(): Promise<void>;
}

export async function startHostileKeyServer(options: { bigBytes?: number } = {}): Promise<HostileKeyServer> {
  const bigBytes = options.bigBytes ?? 10 * 1024 * 1024;
  const requests: string[] = [];
  const bigBytesWritten: number[] = [];
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(path);
    if (path === '/big') {
      const index = bigBytesWritten.push(0) - 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20); // spaces: valid JSON whitespace, so only the size is wrong
      res.write('{"keys":[');
      let written = 9;
      const pump = () => {
        while (written < bigBytes) {
          written += chunk.length;
          bigBytesWritten[index] = written;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end(']}');
      };
      res.on('close', () => res.destroy());
      pump();
      return;
    }
    if (path === '/hang') return; // never answers; closed by close()
    if (path === '/redirect') {
      res.writeHead(302, { location: '/internal' });
      res.end();
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    bigBytesWritten,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
