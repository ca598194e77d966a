import type { RedisClient } from './connect.js';

/** One stream entry as ioredis returns it: `[id, [field, value, field, value, ...]]`. */
export type StreamEntry = [id: string, fields: string[]];

/** Entries read per XREAD: large enough to catch up quickly after a pause, small enough to keep one dispatch short. */
const BATCH = 1000;
/** XREAD blocks at most this long, so a stopped tailer notices within it even if `disconnect` were lost. */
const BLOCK_MS = 5000;
const RETRY_PAUSE_MS = 200;

/**
 * Follows one Redis stream on a dedicated connection and hands every entry to `onEntries`, in id
 * order, exactly once per process. It always asks for the entries after the last id it
 * delivered (never `$`, which would skip whatever arrived between two reads), so after Redis
 * restarts or the connection drops it resumes exactly where it stopped.
 */
export class StreamTailer {
  private stopped = false;
  private running: Promise<void> | undefined;
  /**
   * Settles when `stop` is called. The loop races every wait against it: a disconnect during a
   * reconnect does not settle a queued XREAD (ioredis keeps it in its offline queue), so without
   * this a stop during an outage would wait forever.
   */
  private readonly stopping: Promise<null>;
  private signalStop!: () => void;

  constructor(
    private readonly client: RedisClient,
    private readonly key: string,
    private lastId: string,
    private readonly onEntries: (entries: StreamEntry[]) => void,
    private readonly onError: (error: Error) => void,
  ) {
    this.stopping = new Promise((resolve) => (this.signalStop = () => resolve(null)));
  }

  /** The id of the last entry handed to `onEntries` (or the start position). */
  get position(): string {
    return this.lastId;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.signalStop();
    // Ends the pending blocking XREAD at once when connected.
    this.client.disconnect();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let reply: Array<[string, StreamEntry[]]> | null;
      try {
        const read = this.client.xread('COUNT', BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', this.key, this.lastId) as Promise<Array<
          [string, StreamEntry[]]
        > | null>;
        reply = await Promise.race([read, this.stopping]);
      } catch (error) {
        if (this.stopped) return;
        this.onError(error as Error);
        let pause: NodeJS.Timeout | undefined;
        await Promise.race([new Promise((resolve) => (pause = setTimeout(resolve, RETRY_PAUSE_MS))), this.stopping]);
        clearTimeout(pause);
        continue;
      }
      if (this.stopped) return;
      const entries = reply?.[0]?.[1];
      if (entries === undefined || entries.length === 0) continue;
      this.lastId = entries.at(-1)![0];
      try {
        this.onEntries(entries);
      } catch (error) {
        this.onError(error as Error);
      }
    }
  }
}
