/**
 * One load-client process: holds up to a few thousand SSE subscriber sockets from one loopback
 * source address, counts delivered bench events and samples publish-to-deliver latency. Driven by
 * the orchestrator (`run.ts`) over IPC. Deliberately lean: raw TCP, no HTTP library, and it parses
 * only enough of the stream to count events and read the send timestamp carried in the data.
 */
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { signToken, type SigningSetup } from './tokens.js';

/** How subscribers reach the server: plain HTTP/1.1, HTTPS/1.1, or HTTP/2 over TLS (one connection each). */
export type Scheme = 'http' | 'https' | 'h2';

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
      scheme?: Scheme;
      /** Follow each subscriber's event ids and `"s":` sequence numbers (the connect storm). */
      track?: boolean;
    }
  /** Cuts every subscriber's connection at once, remembering where each was. */
  | { cmd: 'drop'; id: number }
  /**
   * Reconnects every dropped subscriber with its Last-Event-ID and a fresh token; a subscriber has
   * resumed once it holds every event up to `resumeSeq` (the last one published before the drop).
   */
  | {
      cmd: 'reconnect';
      id: number;
      resumeSeq: number;
      concurrency: number;
      timeoutMs: number;
      /** A fresh source address: the dropped connections' ports on the old one sit in TIME_WAIT, and bind() slows down as a range fills. */
      localAddress: string;
    }
  | { cmd: 'storm-stats'; id: number }
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
  socket: { destroy(): void };
  sampled: boolean;
  /** An incomplete frame carried over to the next chunk (rare: frames are written whole). */
  rest: Buffer | undefined;
  opened: boolean;
  /** Set in tracking mode only. */
  track: Track | undefined;
}

interface Track {
  readonly path: string;
  readonly subject: string | undefined;
  lastId: string;
  lastSeq: number;
  gaps: number;
  dups: number;
  resumeSeq: number;
  resumedAt: number;
}

const SEQ = Buffer.from('"s":');
const ID = Buffer.from('id: ');
let dropped: Sub[] = [];

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
    if (sub.track !== undefined) follow(sub.track, buf, at);
  }
}

/** Reads the frame's `id:` and the event's `"s":` around the marker at `at`, and checks the sequence. */
function follow(track: Track, buf: Buffer, at: number): void {
  const previousEnd = buf.lastIndexOf(FRAME_END, at);
  const frameStart = previousEnd === -1 ? 0 : previousEnd + 2;
  const idAt = buf.indexOf(ID, frameStart);
  if (idAt !== -1 && idAt < at) track.lastId = buf.toString('latin1', idAt + ID.length, buf.indexOf(0x0a, idAt));
  const seqAt = buf.indexOf(SEQ, at);
  if (seqAt === -1) return;
  let stop = seqAt + SEQ.length;
  while (stop < buf.length && buf[stop] !== 0x2c && buf[stop] !== 0x7d) stop++;
  const seq = Number(buf.toString('latin1', seqAt + SEQ.length, stop));
  if (track.lastSeq >= 0) {
    if (seq <= track.lastSeq) track.dups++;
    else if (seq > track.lastSeq + 1) track.gaps += seq - track.lastSeq - 1;
  }
  if (seq > track.lastSeq) track.lastSeq = seq;
  if (track.resumedAt === 0 && track.resumeSeq >= 0 && track.lastSeq >= track.resumeSeq) track.resumedAt = nowMs();
}

interface OpenJob {
  readonly host: string;
  readonly port: number;
  readonly localAddress: string;
  readonly signing: SigningSetup | undefined;
  readonly timeoutMs: number;
  readonly scheme: Scheme;
}

function openOne(job: OpenJob, path: string, subject: string | undefined, track: Track | undefined, sampled: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const sub: Sub = { socket: { destroy() {} }, sampled, rest: undefined, opened: false, track };
    const token = job.signing !== undefined && subject !== undefined ? signToken(job.signing, subject) : undefined;
    const resume = track !== undefined && track.lastId !== '' ? `Last-Event-ID: ${track.lastId}\r\n` : '';
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => {
      sub.socket.destroy();
      settle(false);
    }, job.timeoutMs);
    const opened = () => {
      sub.opened = true;
      subs.push(sub);
      settle(true);
    };
    const closed = () => {
      if (sub.opened) closedEarly++;
      settle(false);
    };
    if (job.scheme === 'h2') {
      const session = http2.connect(`https://${job.host}:${job.port}`, {
        createConnection: () =>
          tls.connect({
            socket: net.connect({ host: job.host, port: job.port, localAddress: job.localAddress }),
            rejectUnauthorized: false,
            ALPNProtocols: ['h2'],
          }),
      });
      sub.socket = session;
      session.on('error', () => settle(false));
      session.on('close', closed);
      void (async () => {
        const headers: http2.OutgoingHttpHeaders = { ':path': path, accept: 'text/event-stream' };
        if (token !== undefined) headers.authorization = `Bearer ${await token}`;
        if (resume !== '') headers['last-event-id'] = track!.lastId;
        const stream = session.request(headers);
        stream.on('error', () => settle(false));
        stream.on('response', (head) => (head[':status'] === 200 ? opened() : (session.destroy(), settle(false))));
        stream.on('data', (data: Buffer) => onChunk(sub, data));
      })();
      return;
    }
    const tcp = net.connect({ host: job.host, port: job.port, localAddress: job.localAddress });
    const socket = job.scheme === 'https' ? tls.connect({ socket: tcp, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }) : tcp;
    sub.socket = socket;
    socket.setNoDelay(true);
    socket.once(job.scheme === 'https' ? 'secureConnect' : 'connect', async () => {
      const auth = token === undefined ? '' : `Authorization: Bearer ${await token}\r\n`;
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${job.host}:${job.port}\r\nAccept: text/event-stream\r\n${auth}${resume}\r\n`);
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
      socket.on('data', (data: Buffer) => onChunk(sub, data));
      opened();
      const body = Buffer.from(head.slice(end + 4), 'latin1');
      if (body.length > 0) onChunk(sub, body);
    };
    socket.on('data', onHead);
    socket.on('error', () => settle(false));
    socket.on('close', closed);
  });
}

/** Opens `count` subscribers, `concurrency` at a time; `open(i)` opens the i-th. */
async function inParallel(count: number, concurrency: number, open: (i: number) => Promise<boolean>) {
  const started = performance.now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let lastAt = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      if (await open(i)) {
        ok++;
        lastAt = nowMs();
      } else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { ok, failed, ms: performance.now() - started, lastAt };
}

function connect(c: Extract<ClientCommand, { cmd: 'connect' }>) {
  const job: OpenJob = { ...c, scheme: c.scheme ?? 'http' };
  const base = subs.length;
  return inParallel(c.paths.length, c.concurrency, (i) => {
    const track: Track | undefined = c.track
      ? { path: c.paths[i]!, subject: c.subjects?.[i], lastId: '', lastSeq: -1, gaps: 0, dups: 0, resumeSeq: -1, resumedAt: 0 }
      : undefined;
    return openOne(job, c.paths[i]!, c.subjects?.[i], track, (base + i) % SAMPLE_EVERY === 0);
  });
}

let lastJob: OpenJob | undefined;

process.on('message', async (message: ClientCommand) => {
  const reply = (body: object) => process.send!({ id: message.id, ...body });
  switch (message.cmd) {
    case 'connect':
      lastJob = { ...message, scheme: message.scheme ?? 'http' };
      reply(await connect(message));
      break;
    case 'drop':
      for (const sub of subs) {
        sub.opened = false;
        sub.socket.destroy();
      }
      dropped = subs.splice(0);
      reply({ dropped: dropped.length });
      break;
    case 'reconnect': {
      const again = dropped;
      dropped = [];
      for (const sub of again) if (sub.track !== undefined) sub.track.resumeSeq = message.resumeSeq;
      const job = { ...lastJob!, timeoutMs: message.timeoutMs, localAddress: message.localAddress };
      reply(
        await inParallel(again.length, message.concurrency, (i) =>
          openOne(job, again[i]!.track!.path, again[i]!.track!.subject, again[i]!.track, again[i]!.sampled),
        ),
      );
      break;
    }
    case 'storm-stats': {
      let resumed = 0;
      let lastResumedAt = 0;
      let gaps = 0;
      let dups = 0;
      let minLastSeq = Infinity;
      for (const sub of subs) {
        const track = sub.track;
        if (track === undefined) continue;
        gaps += track.gaps;
        dups += track.dups;
        minLastSeq = Math.min(minLastSeq, track.lastSeq);
        if (track.resumedAt > 0) {
          resumed++;
          lastResumedAt = Math.max(lastResumedAt, track.resumedAt);
        }
      }
      reply({ open: subs.length, resumed, lastResumedAt, gaps, dups, minLastSeq: Number.isFinite(minLastSeq) ? minLastSeq : -1 });
      break;
    }
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
