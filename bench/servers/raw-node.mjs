/**
 * The Node ceiling: a raw `node:http` SSE fan-out. `GET /sub` opens a stream; `POST /pub` frames
 * the body once into a Buffer and writes that one Buffer to every open socket. No auth, no
 * topics, no history, no heartbeats: the least work a Node process can do per delivered event.
 * The response is close-delimited (no chunked encoding), so the frame goes to the socket as is.
 */
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
const sockets = new Set();

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url?.startsWith('/sub')) {
    const socket = res.socket;
    socket.setTimeout(0);
    socket.setNoDelay(true);
    res.removeHeader('Transfer-Encoding');
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'close' });
    res.flushHeaders();
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    return;
  }
  if (req.method === 'POST' && req.url?.startsWith('/pub')) {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const frame = Buffer.from(`data: ${Buffer.concat(chunks).toString('utf8')}\n\n`);
      for (const socket of sockets) socket.write(frame);
      res.writeHead(201, { 'Content-Length': '0' }).end();
    });
    return;
  }
  res.writeHead(404).end();
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

// Exit cleanly on SIGTERM, so that --cpu-prof can write its profile.
process.on('SIGTERM', () => process.exit(0));
