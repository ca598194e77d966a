import { Worker } from 'node:worker_threads';
import { StorageUnavailableError } from './storage-unavailable-error.js';
import type { FromWriter, OpName, OpRequest, StoreStats, ToWriter, WriteFailure, WriteOps, WriterOptions } from './write-protocol.js';

/**
 * The writer thread of this process, shared by every store it opens (in production one; a test
 * process opens hundreds, and a thread takes ~30 ms to start, ~200 ms under tsx). Started with the
 * first store; when it dies, every call waiting on it fails with `storage_unavailable` and the next
 * call starts a new one, which opens the stores again. It is unreferenced while nothing waits on
 * it, so it never keeps the process alive.
 */
class WriterThread {
  private worker: Worker | undefined;
  /** Incremented per thread started: a store opened in an older one must be opened again. */
  generation = 0;
  private readonly connections = new Map<number, WriterConnection>();
  private waiting = 0;

  register(store: number, connection: WriterConnection): void {
    this.connections.set(store, connection);
  }

  unregister(store: number): void {
    this.connections.delete(store);
  }

  post(message: ToWriter): void {
    this.start().postMessage(message);
  }

  /** Calls waiting on the thread: while there are any, it keeps the process alive. */
  hold(delta: number): void {
    const before = this.waiting;
    this.waiting += delta;
    if (before === 0 && this.waiting > 0) this.worker?.ref();
    if (before > 0 && this.waiting === 0) this.worker?.unref();
  }

  /** Ends the thread as a crash would (tests): what was waiting on it fails, the next call starts another. */
  async terminate(): Promise<void> {
    await this.worker?.terminate();
  }

  start(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = startWorker();
    this.generation++;
    let reason = 'the writer thread exited';
    worker.on('message', (message: FromWriter) => this.connections.get(message.store)?.receive(message));
    worker.on('error', (error) => (reason = `the writer thread failed: ${error.message}`));
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const connection of this.connections.values()) connection.threadExited({ code: 'WRITER_EXITED', message: reason });
    });
    if (this.waiting === 0) worker.unref();
    this.worker = worker;
    return worker;
  }
}

/** From the sources (tests, tsx) the thread needs tsx's loader as well; built, it is plain JavaScript. */
function startWorker(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = JSON.stringify(new URL('./writer-thread.ts', here).href);
    return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${entry}); })`, { eval: true });
  }
  return new Worker(new URL('./writer-thread.js', here));
}

const thread = new WriterThread();
let nextStore = 1;

/** Kills the writer thread the way a crash would; for the tests of what follows one. */
export function terminateWriterThread(): Promise<void> {
  return thread.terminate();
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/**
 * The server thread's side of one store's writer: `call` queues an operation, and everything
 * queued in one turn of the event loop goes to the writer thread as one message (and, with what
 * else arrives there meanwhile, one commit). Answers come back in order, so events are fanned out
 * in id order. A failed commit rejects its calls with `StorageUnavailableError` and is reported
 * to `onError`; `failure` says what the last commit hit until one succeeds (readiness).
 */
export class WriterConnection {
  private readonly store = nextStore++;
  private readonly pending = new Map<number, Waiter>();
  private outbox: OpRequest[] = [];
  private scheduled = false;
  private nextCall = 1;
  private openedIn = 0;
  private opening: Waiter | undefined;
  private closingWaiter: (() => void) | undefined;
  private drained: (() => void) | undefined;
  private closed = false;
  private lastStats: StoreStats = { historyRows: 0, historyBytes: 0 };
  private lastFailure: WriteFailure | undefined;

  private constructor(
    readonly file: string,
    private readonly options: WriterOptions,
    private readonly onError: (error: Error) => void,
  ) {}

  /**
   * Opens `file` (created and checked already) for writing in the writer thread.
   * @throws Error when the writer thread cannot open it.
   */
  static async open(file: string, options: WriterOptions, onError: (error: Error) => void): Promise<WriterConnection> {
    const connection = new WriterConnection(file, options, onError);
    thread.register(connection.store, connection);
    try {
      await new Promise((resolve, reject) => {
        connection.opening = { resolve, reject };
        connection.openInThread();
        thread.hold(1);
      }).finally(() => thread.hold(-1));
    } catch (error) {
      thread.unregister(connection.store);
      throw error;
    }
    return connection;
  }

  get stats(): StoreStats {
    return this.lastStats;
  }

  /** The last commit's failure, until a commit succeeds. */
  get failure(): WriteFailure | undefined {
    return this.lastFailure;
  }

  /**
   * Runs one operation in the next commit.
   * @throws StorageUnavailableError when the commit fails (nothing of it was stored).
   */
  call<K extends OpName>(op: K, args: WriteOps[K]['args']): Promise<WriteOps[K]['result']> {
    if (this.closed) return Promise.reject(new StorageUnavailableError({ code: 'STORE_CLOSED', message: 'the store is closed' }));
    const call = this.nextCall++;
    this.outbox.push({ call, op, args });
    if (!this.scheduled) {
      this.scheduled = true;
      // After this turn's I/O callbacks: the requests that arrived together share one message.
      setImmediate(() => this.flush());
    }
    thread.hold(1);
    return new Promise<WriteOps[K]['result']>((resolve, reject) => {
      this.pending.set(call, { resolve, reject });
    });
  }

  /** Lets the calls already made finish, then closes the store's write connection (the WAL is checkpointed into the file). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    if (this.pending.size > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    if (this.openedIn === thread.generation) {
      await new Promise<void>((resolve) => {
        this.closingWaiter = resolve;
        thread.hold(1);
        thread.post({ type: 'close', store: this.store });
      }).finally(() => thread.hold(-1));
    }
    thread.unregister(this.store);
  }

  /** A message from the writer thread about this store. */
  receive(message: FromWriter): void {
    switch (message.type) {
      case 'opened': {
        const opening = this.opening;
        this.opening = undefined;
        if (message.stats !== undefined) this.lastStats = message.stats;
        if (message.failure === undefined) opening?.resolve(undefined);
        else {
          this.openedIn = 0;
          const error = new Error(`${message.failure.code}: ${message.failure.message}`);
          if (opening !== undefined) opening.reject(error);
          else this.onError(new Error(`${this.file} could not be opened again for writing (${error.message})`));
        }
        return;
      }
      case 'results': {
        this.lastStats = message.stats;
        let failed: WriteFailure | undefined;
        for (const result of message.results) {
          const waiter = this.settle(result.call);
          if (waiter === undefined) continue;
          if ('failure' in result) {
            failed = result.failure;
            waiter.reject(new StorageUnavailableError(result.failure));
          } else waiter.resolve(result.value);
        }
        if (failed !== undefined) this.report(failed);
        else this.lastFailure = undefined;
        return;
      }
      case 'closed':
        this.closingWaiter?.();
        this.closingWaiter = undefined;
        return;
    }
  }

  /** The writer thread died: every call waiting on it failed, and the store opens again with the next call. */
  threadExited(failure: WriteFailure): void {
    this.openedIn = 0;
    this.opening?.reject(new Error(`${failure.code}: ${failure.message}`));
    this.opening = undefined;
    this.closingWaiter?.();
    this.closingWaiter = undefined;
    const waiting = [...this.pending.keys()];
    for (const call of waiting) this.settle(call)?.reject(new StorageUnavailableError(failure));
    if (waiting.length > 0 || !this.closed) this.report(failure);
  }

  /** Opens the store in the current thread (starting one if there is none); the ops posted after it find it open. */
  private openInThread(): void {
    thread.post({ type: 'open', store: this.store, file: this.file, options: this.options });
    this.openedIn = thread.generation;
  }

  private flush(): void {
    this.scheduled = false;
    if (this.outbox.length === 0) return;
    const ops = this.outbox;
    this.outbox = [];
    if (this.openedIn !== thread.generation) this.openInThread();
    thread.post({ type: 'ops', store: this.store, ops });
  }

  private settle(call: number): Waiter | undefined {
    const waiter = this.pending.get(call);
    if (waiter === undefined) return undefined;
    this.pending.delete(call);
    thread.hold(-1);
    if (this.pending.size === 0 && this.drained !== undefined) {
      const drained = this.drained;
      this.drained = undefined;
      queueMicrotask(drained);
    }
    return waiter;
  }

  private report(failure: WriteFailure): void {
    this.lastFailure = failure;
    this.onError(Object.assign(new Error(`${this.file}: ${failure.code}: ${failure.message}`), { code: failure.code }));
  }
}
