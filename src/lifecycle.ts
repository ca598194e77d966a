/**
 * Start and stop as one list: each part registers how to close itself the moment it is opened,
 * and `close` runs those closers newest first, so shutdown always mirrors construction (fastify's
 * `onClose` hooks run in reverse registration order for the same reason). A start that fails
 * halfway closes exactly what it had opened (`build`).
 *
 * Every closer is bounded in time: one that hangs (a connection to a store that no longer
 * answers) is abandoned after `closerTimeoutMs` and the rest still run, so a SIGTERM during an
 * outage still ends the process.
 */
export class Lifecycle {
  private readonly closers: Array<{ readonly name: string; readonly close: () => unknown; readonly timeoutMs: number }> = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly options: {
      /** Longest wait for one closer. */
      readonly closerTimeoutMs: number;
      /** Told about a closer that failed or timed out; close goes on with the next. */
      readonly onCloseError: (name: string, error: unknown) => void;
    },
  ) {}

  /**
   * Registers `close` to run at shutdown, before everything registered earlier.
   * @param timeoutMs overrides `closerTimeoutMs` for a closer that waits on purpose (the shutdown grace).
   */
  onClose(name: string, close: () => unknown, timeoutMs = this.options.closerTimeoutMs): void {
    if (this.closing !== undefined) throw new Error(`${name} opened while closing`);
    this.closers.push({ name, close, timeoutMs });
  }

  /** Opens something and registers its closer in one step. */
  async open<T>(name: string, open: () => T | Promise<T>, close: (opened: T) => unknown): Promise<T> {
    const opened = await open();
    this.onClose(name, () => close(opened));
    return opened;
  }

  /**
   * Runs `build`; if it throws, closes whatever it registered and rethrows. Use it for a start
   * that opens several things in sequence.
   */
  async build<T>(build: (lifecycle: this) => Promise<T>): Promise<T> {
    try {
      return await build(this);
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** Closes everything, newest first. Idempotent: a second call waits for the first. */
  close(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    for (const { name, close, timeoutMs } of this.closers.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(close),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not close within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } catch (error) {
        this.options.onCloseError(name, error);
      } finally {
        clearTimeout(timer);
      }
    }
    this.closers.length = 0;
  }
}
