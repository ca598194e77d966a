import { deserializeError, NotifyClientError } from './errors.js';
import type { CallMethod, TabMessage, WorkerMessage } from './shared-protocol.js';
import type {
  AuthState,
  NotifyClientApi,
  PublishOptions,
  PublishResult,
  SessionInfo,
  StreamState,
  SubscribeHandlers,
  SubscribeOptions,
  Subscription,
} from './types.js';

interface TabSubscription {
  readonly handlers: SubscribeHandlers;
  state: StreamState;
  lastEventId: string | undefined;
}

/**
 * The tab's side of the shared client: the same API as `NotifyClient`, carried out by the
 * SharedWorker (`hostSharedWorker`), so every tab of the origin shares one sign-in and one stream.
 */
export class SharedNotifyClient implements NotifyClientApi {
  readonly #port: MessagePort;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: NotifyClientError) => void }>();
  readonly #subscriptions = new Map<number, TabSubscription>();
  readonly #listeners = new Set<(state: AuthState) => void>();
  #session: SessionInfo | undefined;
  #nextId = 1;
  readonly ready: Promise<void>;

  constructor(workerUrl: string) {
    const worker = new SharedWorker(workerUrl, { name: 'notify' });
    this.#port = worker.port;
    // The script failed to load or run: fail every pending call rather than leave it hanging.
    worker.onerror = () => {
      const error = new NotifyClientError('worker_failed', `The shared worker ${workerUrl} failed.`);
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
      for (const [id, entry] of this.#subscriptions) {
        this.#subscriptions.delete(id);
        entry.state = 'stopped';
        entry.handlers.state?.('stopped');
        entry.handlers.stop?.(error);
      }
    };
    let markReady: () => void = () => undefined;
    this.ready = new Promise((resolve) => (markReady = resolve));
    this.#port.onmessage = (event: MessageEvent) => {
      const message = event.data as WorkerMessage;
      if (message.op === 'auth') markReady();
      this.#receive(message);
    };
    this.#port.start();
    globalThis.addEventListener?.('pagehide', () => this.#post({ op: 'bye' }));
  }

  get session(): SessionInfo | undefined {
    return this.#session;
  }

  onAuthChange(listener: (state: AuthState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  login(username: string, password: string): Promise<SessionInfo> {
    return this.#call('login', [username, password]) as Promise<SessionInfo>;
  }

  async restore(): Promise<SessionInfo | undefined> {
    return ((await this.#call('restore', [])) as SessionInfo | null) ?? undefined;
  }

  async logout(): Promise<void> {
    await this.#call('logout', []);
  }

  refresh(): Promise<SessionInfo> {
    return this.#call('refresh', []) as Promise<SessionInfo>;
  }

  publish(topics: readonly string[], data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    return this.#call('publish', [topics, data, options]) as Promise<PublishResult>;
  }

  subscribe<T = unknown>(topics: readonly string[], handlers: SubscribeHandlers<T>, options: SubscribeOptions = {}): Subscription {
    const id = this.#nextId++;
    const entry: TabSubscription = { handlers: handlers, state: 'connecting', lastEventId: undefined };
    this.#subscriptions.set(id, entry);
    this.#post({ op: 'subscribe', id, topics: [...topics], options: { ...options, types: [...(options.types ?? [])] } });
    return {
      get state() {
        return entry.state;
      },
      get lastEventId() {
        return entry.lastEventId;
      },
      close: () => {
        if (!this.#subscriptions.delete(id)) return;
        entry.state = 'stopped';
        this.#post({ op: 'unsubscribe', id });
      },
    };
  }

  #post(message: TabMessage): void {
    this.#port.postMessage(message);
  }

  #call(method: CallMethod, args: unknown[]): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#post({ op: 'call', id, method, args });
    });
  }

  #receive(message: WorkerMessage): void {
    if (message.op === 'result') {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.ok) pending?.resolve(message.value);
      else pending?.reject(deserializeError(message.error));
      return;
    }
    if (message.op === 'auth') {
      this.#session = message.state.signedIn ? message.state.session : undefined;
      for (const listener of [...this.#listeners]) listener(message.state);
      return;
    }
    const entry = this.#subscriptions.get(message.id);
    if (entry === undefined) return;
    const { handlers } = entry;
    switch (message.op) {
      case 'event':
        entry.lastEventId = message.event.id || entry.lastEventId;
        handlers.event?.(message.event);
        return;
      case 'reset':
        handlers.reset?.(message.info);
        return;
      case 'state':
        entry.lastEventId = message.lastEventId;
        if (entry.state !== message.state) {
          entry.state = message.state;
          handlers.state?.(message.state);
        }
        return;
      case 'connected':
        handlers.connected?.(message.info);
        return;
      case 'renewed':
        handlers.renewed?.(message.expiresAt);
        return;
      case 'stop':
        this.#subscriptions.delete(message.id);
        entry.state = 'stopped';
        handlers.state?.('stopped');
        handlers.stop?.(deserializeError(message.error));
        return;
    }
  }
}
