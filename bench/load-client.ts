/**
 * One load-client process: holds up to a few thousand SSE subscriber sockets from one loopback
 * source address, counts delivered bench events and samples publish-to-deliver latency. Driven by
 * the orchestrator (`run.ts`) over IPC. Deliberately lean: raw TCP, no HTTP library, and it parses
 * only enough of the stream to count events and read the send timestamp carried in the data.
 */
import net from 'node:net';
import { signToken, type SigningSetup } from './tokens.js';

export type ClientCommand =
  | {
      cmd: 'connect';
      id: number;
      port: number;
      host: string;
      localAddress: string;
      paths: string[];
      subjects: string[] | undefined;
      signing: SigningSetup | undefined;
      concurrency: number;
      timeoutMs: number;
    }
  | { cmd: 'reset'; id: number }
  | { cmd: 'stats'; id: number }
  | { cmd: 'close'; id: number }
  | { cmd: 'exit'; id: number };

/** Bench events carry `"t":<ms>` (hrtime, shared by every process on the machine) in their data. */
const MARKER = Buffer.from('"t":');
const FRAME_END = Buffer.from('\n\n');
/** Latency is sampled on every SAMPLE_EVERY-th socket, into a bounded array. */
const SAMPLE_EVERY = 16;
const MAX_SAMPLES = 200_000;

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

interface Sub {
  socket: net.Socket;
  sampled: boolean;
  /** An incomplete frame carried over to the next chunk (rare: frames are written whole). */
  rest: Buffer | undefined;
  opened: boolean;
}

const subs: Sub[] = [];
let events = 0;
let closedEarly = 0;
const latencies = new Float64Array(MAX_SAMPLES);
let sampleCount = 0;

function onChunk(sub: Sub, chunk: Buffer): void {
  let buf = chunk;
  if (sub.rest !== undefined) {
    buf = Buffer.concat([sub.rest, chunk]);
    sub.rest = undefined;
  }
  const end = buf.lastIndexOf(FRAME_END);
  if (end === -1) {
    sub.rest = buf.length > 65536 ? undefined : buf;
    return;
  }
  if (end + 2 < buf.length) sub.rest = Buffer.from(buf.subarray(end + 2));
  let pos = 0;
  const limit = end + 2;
  const now = sub.sampled ? nowMs() : 0;
  for (;;) {
    const at = buf.indexOf(MARKER, pos);
    if (at === -1 || at >= limit) break;
    events++;
    pos = at + MARKER.length;
    if (sub.sampled && sampleCount < MAX_SAMPLES) {
      let stop = pos;
      while (stop < limit && buf[stop] !== 0x2c /* , */ && buf[stop] !== 0x7d /* } */) stop++;
      latencies[sampleCount++] = now - Number(buf.toString('latin1', pos, stop));
    }
  }
}

function openOne(c: Extract<ClientCommand, { cmd: 'connect' }>, index: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sub: Sub = {
      socket: undefined as unknown as net.Socket,
      sampled: (subs.length + index) % SAMPLE_EVERY === 0,
      rest: undefined,
      opened: false,
    };
    const token = c.signing !== undefined && c.subjects !== undefined ? signToken(c.signing, c.subjects[index]!) : undefined;
    const socket = net.connect({ host: c.host, port: c.port, localAddress: c.localAddress });
    sub.socket = socket;
    socket.setNoDelay(true);
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => {
      socket.destroy();
      settle(false);
    }, c.timeoutMs);
    socket.once('connect', async () => {
      const auth = token === undefined ? '' : `Authorization: Bearer ${await token}\r\n`;
      socket.write(`GET ${c.paths[index]} HTTP/1.1\r\nHost: ${c.host}:${c.port}\r\nAccept: text/event-stream\r\n${auth}\r\n`);
    });
    let head = '';
    const onHead = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onHead);
      if (!head.startsWith('HTTP/1.1 200')) {
        socket.destroy();
        settle(false);
        return;
      }
      sub.opened = true;
      subs.push(sub);
      socket.on('data', (data: Buffer) => onChunk(sub, data));
      const body = Buffer.from(head.slice(end + 4), 'latin1');
      if (body.length > 0) onChunk(sub, body);
      settle(true);
    };
    socket.on('data', onHead);
    socket.on('error', () => settle(false));
    socket.on('close', () => {
      if (sub.opened) closedEarly++;
      settle(false);
    });
  });
}

async function connect(c: Extract<ClientCommand, { cmd: 'connect' }>): Promise<{ ok: number; failed: number; ms: number }> {
  const started = performance.now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  const worker = async () => {
    while (next < c.paths.length) {
      const i = next++;
      if (await openOne(c, i)) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(c.concurrency, c.paths.length) }, worker));
  return { ok, failed, ms: performance.now() - started };
}

process.on('message', async (message: ClientCommand) => {
  const reply = (body: object) => process.send!({ id: message.id, ...body });
  switch (message.cmd) {
    case 'connect':
      reply(await connect(message));
      break;
    case 'reset':
      events = 0;
      sampleCount = 0;
      reply({});
      break;
    case 'stats':
      reply({ events, open: subs.length, closedEarly, latencies: Array.from(latencies.subarray(0, sampleCount)) });
      break;
    case 'close': {
      for (const sub of subs) {
        sub.opened = false;
        sub.socket.destroy();
      }
      subs.length = 0;
      closedEarly = 0;
      reply({});
      break;
    }
    case 'exit':
      reply({});
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
