import { expect } from 'chai';
import { SingleProcessPresence } from '../../../src/backends/single-process-presence.js';
import { PresenceHub, occupancyTracked, type PresenceSession } from '../../../src/presence/presence-hub.js';
import { PresencePolicy } from '../../../src/presence/presence-policy.js';
import type { PresenceStore } from '../../../src/presence/presence-store.js';
import { parseSelector } from '../../../src/topics/selector.js';
import type { WebhookEvent } from '../../../src/webhooks/webhook-event.js';
import { FakeTimers, flushPromises } from '../../webhooks/fake-timers.js';
import { webhookTarget } from '../../webhooks/webhook-test-kit.js';

const LEAVE_DELAY_MS = 5000;
const policy = PresencePolicy.parse({ topics: [{ selector: 'documents/*' }] });

interface FakeSession extends PresenceSession {
  readonly frames: Array<{ event: string; data: any }>;
  closed: boolean;
}

let sessions = 0;
function session(subject: string, topics: string[], presenceTopics: string[] = []): FakeSession {
  const frames: FakeSession['frames'] = [];
  return {
    id: `s${++sessions}`,
    subject,
    selectors: topics.map(parseSelector),
    presenceTopics,
    closed: false,
    frames,
    sendControl(frame: string) {
      const event = /^event: (.+)$/m.exec(frame)![1]!;
      frames.push({ event, data: JSON.parse(/^data: (.+)$/m.exec(frame)![1]!) });
    },
  };
}

describe('PresenceHub (memory store, fake timers)', () => {
  let timers: FakeTimers;
  let store: SingleProcessPresence;
  let webhooks: WebhookEvent[];
  let hub: PresenceHub;
  const kinds = () => webhooks.map((event) => ('subject' in event ? `${event.kind} ${event.subject}` : `${event.kind} ${event.topic}`));
  const membership = () => kinds().filter((kind) => kind.startsWith('member-'));

  function makeHub(options: { store?: PresenceStore; pageSize?: number; occupancy?: boolean } = {}) {
    return new PresenceHub({
      store: options.store ?? store,
      policy,
      leaveDelayMs: LEAVE_DELAY_MS,
      pageSize: options.pageSize ?? 100,
      webhooks: { enqueue: (event) => webhooks.push(event) },
      tracksOccupancy:
        options.occupancy === true
          ? occupancyTracked([webhookTarget({ events: ['topic-occupied', 'topic-vacated'], topics: ['news/**'] })])
          : () => false,
      clock: timers.clock,
      timers,
      onError: () => undefined,
    });
  }

  /** Replaces the hub of `beforeEach` (closed first, so it stops listening to the store). */
  async function rebuild(options: Parameters<typeof makeHub>[0]) {
    await hub.close();
    webhooks.length = 0;
    return makeHub(options);
  }

  beforeEach(() => {
    timers = new FakeTimers();
    store = new SingleProcessPresence({ clock: timers.clock, instance: 'test' });
    webhooks = [];
    hub = makeHub();
  });

  it('makes five tabs of alice one member; closing four keeps her; the fifth makes her leave after the delay', async () => {
    const tabs = Array.from({ length: 5 }, () => session('alice', ['documents/1']));
    for (const tab of tabs) hub.started(tab);
    await flushPromises();
    expect(membership()).to.deep.equal(['member-added alice']);
    for (const tab of tabs.slice(0, 4)) hub.ended(tab, 'client_gone');
    await timers.advance(60_000);
    expect(membership()).to.deep.equal(['member-added alice']);
    expect((await store.members('documents/1', { limit: 10 })).count).to.equal(1);
    hub.ended(tabs[4]!, 'client_gone');
    await timers.advance(LEAVE_DELAY_MS - 1);
    expect(membership()).to.deep.equal(['member-added alice']);
    await timers.advance(1);
    expect(membership()).to.deep.equal(['member-added alice', 'member-removed alice']);
    expect(webhooks.at(-1)).to.deep.include({ kind: 'member-removed', topic: 'documents/1', reason: 'left' });
  });

  it('tells nothing about membership when a stream drops and comes back within the delay', async () => {
    const first = session('alice', ['documents/1']);
    hub.started(first);
    await flushPromises();
    hub.ended(first, 'client_gone');
    await timers.advance(LEAVE_DELAY_MS - 1);
    hub.started(session('alice', ['documents/1']));
    hub.started(session('bob', ['documents/1'])); // a positive signal after anything alice's drop could have caused
    await timers.advance(60_000);
    expect(membership()).to.deep.equal(['member-added alice', 'member-added bob']);
  });

  it('tells connected and disconnected for every stream, with its topics and how it ended', async () => {
    const stream = session('alice', ['users/alice/**', 'documents/1']);
    hub.started(stream);
    hub.ended(stream, 'token_expired');
    expect(webhooks.filter((event) => event.kind === 'connected' || event.kind === 'disconnected')).to.deep.equal([
      { kind: 'connected', subject: 'alice', connectionId: stream.id, topics: ['users/alice/**', 'documents/1'], at: timers.now },
      {
        kind: 'disconnected',
        subject: 'alice',
        connectionId: stream.id,
        topics: ['users/alice/**', 'documents/1'],
        reason: 'token_expired',
        at: timers.now,
      },
    ]);
  });

  it('records open connections in the store for the reconciliation snapshot, and removes them when they end', async () => {
    const stream = session('alice', ['documents/1']);
    hub.started(stream);
    expect((await store.connections({ limit: 10 }, 'alice')).subjects[0]!.connections.map((c) => c.connectionId)).to.deep.equal([
      stream.id,
    ]);
    hub.ended(stream, 'client_gone');
    expect((await store.connections({ limit: 10 }, 'alice')).subjects[0]!.connections).to.deep.equal([]);
  });

  it('makes no member of a wildcard subscriber or of a topic without presence', async () => {
    hub.started(session('admin', ['documents/*', '**']));
    hub.started(session('alice', ['news/today']));
    hub.started(session('bob', ['documents/2'])); // positive signal
    await flushPromises();
    expect(membership()).to.deep.equal(['member-added bob']);
  });

  it('tracks occupancy only for selectors a webhook target wants, occupied once and vacated after the delay', async () => {
    hub = await rebuild({ occupancy: true });
    const a = session('alice', ['news/today', 'documents/1']);
    const b = session('bob', ['news/today']);
    hub.started(a);
    hub.started(b);
    hub.ended(a, 'client_gone');
    hub.ended(b, 'client_gone');
    await timers.advance(LEAVE_DELAY_MS);
    const occupancy = kinds().filter((kind) => kind.startsWith('topic-'));
    expect(occupancy).to.deep.equal(['topic-occupied news/today', 'topic-vacated news/today']);
  });

  describe('presence events on a stream that asked', () => {
    it('sends a snapshot with herself, then joins and leaves of others, and none of its own past', async () => {
      hub.started(session('bob', ['documents/1']));
      await flushPromises();
      const watching = session('alice', ['documents/1'], ['documents/1']);
      hub.started(watching);
      hub.open(watching);
      await flushPromises();
      expect(watching.frames).to.have.length(1);
      expect(watching.frames[0]!.event).to.equal('presence-snapshot');
      expect(watching.frames[0]!.data).to.deep.include({ topic: 'documents/1', count: 2 });
      expect(watching.frames[0]!.data.members.map((m: { subject: string }) => m.subject)).to.deep.equal(['alice', 'bob']);
      expect(watching.frames[0]!.data.members[0].since).to.equal(new Date(timers.now).toISOString());
      const carol = session('carol', ['documents/1']);
      hub.started(carol);
      await flushPromises();
      hub.ended(carol, 'client_gone');
      await timers.advance(LEAVE_DELAY_MS);
      expect(watching.frames.slice(1)).to.deep.equal([
        {
          event: 'presence-join',
          data: { topic: 'documents/1', subject: 'carol', since: new Date(timers.now - LEAVE_DELAY_MS).toISOString() },
        },
        { event: 'presence-leave', data: { topic: 'documents/1', subject: 'carol', reason: 'left' } },
      ]);
    });

    it('caps the snapshot at the page size and says where the next page starts', async () => {
      hub = await rebuild({ pageSize: 2 });
      for (const name of ['dave', 'bob', 'carol']) hub.started(session(name, ['documents/1']));
      await flushPromises();
      const watching = session('eve', ['documents/*'], ['documents/1']);
      hub.open(watching);
      await flushPromises();
      expect(watching.frames[0]!.data).to.deep.include({ count: 3, next: 'carol' });
      expect(watching.frames[0]!.data.members.map((m: { subject: string }) => m.subject)).to.deep.equal(['bob', 'carol']);
    });

    it('stops sending to a stream once it ended, and ignores a stream that closed before it opened', async () => {
      const watching = session('alice', ['documents/1'], ['documents/1']);
      hub.started(watching);
      hub.open(watching);
      await flushPromises();
      hub.ended(watching, 'client_gone');
      const late = session('zed', ['documents/1'], ['documents/1']);
      late.closed = true;
      hub.open(late);
      hub.started(session('bob', ['documents/1']));
      await flushPromises();
      expect(watching.frames.map((frame) => frame.event)).to.deep.equal(['presence-snapshot']);
      expect(late.frames).to.deep.equal([]);
    });

    it('drops changes the snapshot already reflects, however late they arrive', async () => {
      // A store whose changes come after its snapshot (a shared store's tail can be slower than a read).
      const slow: PresenceStore = Object.create(store) as PresenceStore;
      const listeners: Array<(change: any) => void> = [];
      const held: any[] = [];
      store.onChange((change) => held.push(change));
      slow.onChange = (listener) => {
        listeners.push(listener);
        return () => undefined;
      };
      hub = await rebuild({ store: slow });
      hub.started(session('bob', ['documents/1']));
      const watching = session('alice', ['documents/1'], ['documents/1']);
      hub.started(watching);
      hub.open(watching);
      await flushPromises();
      hub.started(session('carol', ['documents/1']));
      await flushPromises();
      for (const change of held) for (const listener of listeners) listener(change);
      expect(watching.frames.map((frame) => `${frame.event} ${frame.data.subject ?? ''}`.trim())).to.deep.equal([
        'presence-snapshot',
        'presence-join carol',
      ]);
    });
  });

  it('on close of a one-process store, tells the leaves that were waiting, before the webhooks close', async () => {
    const stream = session('alice', ['documents/1']);
    hub.started(stream);
    hub.ended(stream, 'shutdown');
    await hub.close();
    expect(membership()).to.deep.equal(['member-added alice', 'member-removed alice']);
    expect(timers.size).to.equal(0);
  });
});
