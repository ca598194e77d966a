/**
 * The Node ceiling: a raw `node:http` SSE fan-out. `GET /sub` opens a stream; `POST /pub` frames
 * the body once into a Buffer and writes that one Buffer to every open stream. No auth, no
 * topics, no history, no heartbeats: the least work a Node process can do per delivered event.
 * The response is close-delimited (no chunked encoding), so the frame goes to the socket as is.
 *
 *   node raw-node.mjs PORT                      plain HTTP/1.1
 *   node raw-node.mjs PORT --tls CERT KEY       HTTPS with HTTP/2 and HTTP/1.1 fallback (ALPN),
 *                                               as notify's listener does with TLS_CERT_FILE
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';

const [portArg, flag, certFile, keyFile] = process.argv.slice(2);
const port = Number(portArg ?? 0);
/** Where each stream's frames go: its socket (HTTP/1.1) or its response (HTTP/2). */
const writers = new Set();

function handle(req, res) {
  if (req.method === 'GET' && req.url?.startsWith('/sub')) {
    if (req.httpVersionMajor === 2) {
      res.stream.setTimeout(0);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(':\n');
      writers.add(res);
      res.once('close', () => writers.delete(res));
      return;
    }
    const socket = res.socket;
    socket.setTimeout(0);
    socket.setNoDelay(true);
    res.removeHeader('Transfer-Encoding');
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'close' });
    res.flushHeaders();
    writers.add(socket);
    socket.once('close', () => writers.delete(socket));
    return;
  }
  if (req.method === 'POST' && req.url?.startsWith('/pub')) {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const frame = Buffer.from(`data: ${Buffer.concat(chunks).toString('utf8')}\n\n`);
      for (const writer of writers) writer.write(frame);
      res.writeHead(201, { 'Content-Length': '0' }).end();
    });
    return;
  }
  res.writeHead(404).end();
}

const server =
  flag === '--tls'
    ? http2.createSecureServer({ allowHTTP1: true, cert: readFileSync(certFile), key: readFileSync(keyFile) }, handle)
    : http.createServer(handle);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

// Exit cleanly on SIGTERM, so that --cpu-prof can write its profile.
process.on('SIGTERM', () => process.exit(0));
