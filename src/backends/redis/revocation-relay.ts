import { randomBytes } from 'node:crypto';
import type { RedisClient } from './connect.js';
import { StreamTailer, type StreamEntry } from './stream-tailer.js';
import type { Revocation, RevocationList } from '../../auth/revocations.js';

export interface RevocationRelayOptions {
  readonly revocations: RevocationList;
  /** A `commands` connection, shared; the relay does not close it. */
  readonly commands: RedisClient;
  /** A dedicated `blocking` connection for the tail; the relay closes it. */
  readonly blocking: RedisClient;
  readonly keyPrefix: string;
  readonly clock?: () => number;
  readonly onError: (error: Error) => void;
}

/**
 * Shares revocations between instances over a Redis stream (`<prefix>revocations`): a logout,
 * a refresh-token reuse or an account change on one instance closes the affected streams on all
 * of them, and a token revoked on one is refused by all. A stream rather than pub/sub because it
 * keeps what was said: an instance that starts (or loses Redis for a while) reads back every
 * revocation still within the retention and misses none. Entries older than the retention are
 * trimmed on each write.
 */
export class RevocationRelay {
  /** Marks this process's own entries, which it has applied already. */
  private readonly origin = randomBytes(8).toString('base64url');
  private readonly key: string;
  private readonly clock: () => number;
  private tailer: StreamTailer | undefined;
  private stopListening: (() => void) | undefined;

  constructor(private readonly options: RevocationRelayOptions) {
    this.key = `${options.keyPrefix}revocations`;
    this.clock = options.clock ?? Date.now;
  }

  /** Reads back the revocations still in force, then follows new ones and sends this instance's. */
  async start(): Promise<void> {
    const since = `${Math.max(0, Math.floor(this.clock() - this.options.revocations.retentionMs))}-0`;
    const existing = (await this.options.commands.xrange(this.key, since, '+')) as StreamEntry[];
    this.apply(existing);
    const start = existing.at(-1)?.[0] ?? (await this.lastId());
    this.tailer = new StreamTailer(this.options.blocking, this.key, start, (entries) => this.apply(entries), this.options.onError);
    this.tailer.start();
    this.stopListening = this.options.revocations.onRevoke((revocation, origin) => {
      if (origin === 'local') void this.send(revocation);
    });
  }

  async stop(): Promise<void> {
    this.stopListening?.();
    await this.tailer?.stop();
  }

  private async lastId(): Promise<string> {
    const last = (await this.options.commands.xrevrange(this.key, '+', '-', 'COUNT', 1)) as StreamEntry[];
    return last[0]?.[0] ?? '0-0';
  }

  private async send(revocation: Revocation): Promise<void> {
    const now = Math.floor(this.clock());
    const fields =
      revocation.kind === 'session'
        ? ['k', 'session', 'v', revocation.sessionId, 'r', '']
        : ['k', 'subject', 'v', revocation.subject, 'r', revocation.reason];
    try {
      await this.options.commands.xadd(
        this.key,
        'MINID',
        '~',
        `${Math.max(0, now - this.options.revocations.retentionMs)}-0`,
        '*',
        ...fields,
        'a',
        String(now),
        'o',
        this.origin,
      );
    } catch (error) {
      // Applied here already; the other instances learn of it only through Redis. The callers
      // (logout, refresh) also wrote to Redis and have failed with 503 in that case.
      this.options.onError(error as Error);
    }
  }

  private apply(entries: StreamEntry[]): void {
    for (const [, fields] of entries) {
      const field = (name: string) => {
        for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]!;
        return '';
      };
      if (field('o') === this.origin) continue;
      const at = Number(field('a'));
      const value = field('v');
      if (!Number.isFinite(at) || value === '') continue;
      const revocation: Revocation =
        field('k') === 'session' ? { kind: 'session', sessionId: value } : { kind: 'subject', subject: value, reason: field('r') };
      this.options.revocations.applyRemote(revocation, at);
    }
  }
}
