import { serializeError } from './errors.js';
import { NotifyClient, type NotifyClientOptions } from './notify-client.js';
import type { CallMethod, TabMessage, WorkerMessage } from './shared-protocol.js';
import type { AuthState, ConnectedInfo, StreamState, Subscription } from './types.js';

interface Group {
  readonly subscription: Subscription;
  /** Tabs in this group: port -> their subscription ids. */
  readonly members: Map<MessagePort, Set<number>>;
  state: StreamState;
  /** The stream's current `connected` info, for tabs that join an open stream. */
  connected: ConnectedInfo | undefined;
}

const METHODS: ReadonlySet<CallMethod> = new Set(['login', 'logout', 'restore', 'refresh', 'publish']);

/**
 * Runs inside a SharedWorker: one `NotifyClient` (cookie mode) for every tab of the origin. Tabs
 * that subscribe to the same topics share one server stream; sign-in, refresh and logout happen
 * once, here, so tabs never race each other with the same rotating refresh token.
 * @param scope the SharedWorker global (`self`).
 */
export function hostSharedWorker(
  scope: { onconnect: ((event: MessageEvent) => void) | null },
  options: NotifyClientOptions = {},
): NotifyClient {
  const client = new NotifyClient({ ...options, mode: 'cookie' });
  const ports = new Set<MessagePort>();
  const groups = new Map<string, Group>();
  let auth: AuthState = { signedIn: false };

  const send = (port: MessagePort, message: WorkerMessage) => port.postMessage(message);
  const toMembers = (group: Group, make: (id: number) => WorkerMessage) => {
    for (const [port, ids] of group.members) for (const id of ids) send(port, make(id));
  };

  client.onAuthChange((state) => {
    auth = state;
    for (const port of ports) send(port, { op: 'auth', state });
  });

  const leave = (port: MessagePort, id?: number) => {
    for (const [key, group] of groups) {
      const ids = group.members.get(port);
      if (ids === undefined) continue;
      if (id === undefined) ids.clear();
      else ids.delete(id);
      if (ids.size === 0) group.members.delete(port);
      if (group.members.size === 0) {
        group.subscription.close();
        groups.delete(key);
      }
    }
  };

  const handle = async (port: MessagePort, message: TabMessage) => {
    switch (message.op) {
      case 'call': {
        if (!METHODS.has(message.method)) return;
        try {
          // Called with `client` as `this` at once; only methods in METHODS get here.
          // eslint-disable-next-line @typescript-eslint/unbound-method
          const method = client[message.method] as (...args: unknown[]) => Promise<unknown>;
          const value = await method.apply(client, message.args);
          send(port, { op: 'result', id: message.id, ok: true, value: value ?? null });
        } catch (error) {
          send(port, { op: 'result', id: message.id, ok: false, error: serializeError(error) });
        }
        return;
      }
      case 'subscribe': {
        const { topics, options: subscribeOptions } = message;
        const key = JSON.stringify([[...topics].sort(), [...(subscribeOptions.types ?? [])].sort(), subscribeOptions.renew !== false]);
        let group = groups.get(key);
        if (group === undefined) {
          const members = new Map<MessagePort, Set<number>>();
          const created: Group = {
            members,
            state: 'connecting',
            connected: undefined,
            subscription: undefined as unknown as Subscription,
          };
          (created as { subscription: Subscription }).subscription = client.subscribe(
            topics,
            {
              event: (event) => toMembers(created, (id) => ({ op: 'event', id, event })),
              reset: (info) => toMembers(created, (id) => ({ op: 'reset', id, info })),
              connected: (info) => {
                created.connected = info;
                toMembers(created, (id) => ({ op: 'connected', id, info }));
              },
              renewed: (expiresAt) => toMembers(created, (id) => ({ op: 'renewed', id, expiresAt })),
              state: (state) => {
                created.state = state;
                toMembers(created, (id) => ({ op: 'state', id, state, lastEventId: created.subscription?.lastEventId }));
              },
              stop: (error) => {
                toMembers(created, (id) => ({ op: 'stop', id, error: serializeError(error) }));
                groups.delete(key);
              },
            },
            subscribeOptions,
          );
          group = created;
          groups.set(key, group);
        }
        let ids = group.members.get(port);
        if (ids === undefined) group.members.set(port, (ids = new Set()));
        ids.add(message.id);
        send(port, { op: 'state', id: message.id, state: group.state, lastEventId: group.subscription.lastEventId });
        if (group.state === 'open' && group.connected !== undefined) send(port, { op: 'connected', id: message.id, info: group.connected });
        return;
      }
      case 'unsubscribe':
        leave(port, message.id);
        return;
      case 'bye':
        leave(port);
        ports.delete(port);
        return;
    }
  };

  scope.onconnect = (event: MessageEvent) => {
    const port = event.ports[0]!;
    ports.add(port);
    port.onmessage = (message: MessageEvent) => void handle(port, message.data as TabMessage);
    port.start();
    send(port, { op: 'auth', state: auth });
  };
  return client;
}
