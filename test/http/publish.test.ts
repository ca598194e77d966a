import { expect } from 'chai';
import { expectResponseMatchesSpec } from '../helpers/openapi.js';
import { openStream, postJson, startServer, type StreamClient, type TestServer } from '../helpers/server.js';
import { publish, publishedEvents, readJson } from '../helpers/streams.js';

const TYPES = ['note', 'Connected', 'a'.repeat(64)];

describe('POST /events (publish) input validation', () => {
  let t: TestServer;
  let newsroom: string;
  let alice: string;
  let watcher: StreamClient;
  let sentinels = 0;
  /** The newest event id the bus has issued (private state, read to prove nothing was published). */
  const head = () => JSON.stringify((t.server.bus as any).head ?? null);

  before(async () => {
    t = await startServer();
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
    await t.addAccount('watcher', ['admin']);
    newsroom = (await t.login('newsroom')).access_token;
    alice = (await t.login('alice')).access_token;
    const watcherToken = (await t.login('watcher')).access_token;
    watcher = openStream(`${t.url}/events?topic=**`, watcherToken, { types: TYPES });
    await watcher.waitFor((e) => e.type === 'connected');
  });
  after(async () => {
    watcher.close();
    await t.close();
  });

  /** Sends the request, checks the error answer, and proves that no event was published. */
  async function expectRefused(send: () => Promise<Response>, status: number, code: string, field?: string) {
    const seen = watcher.events.length;
    const headBefore = head();
    const res = await readJson(await send());
    expect(res.status, JSON.stringify(res.body)).to.equal(status);
    expect(res.body.error).to.equal(code);
    if (field !== undefined) expect(res.body.field).to.equal(field);
    expect(res.headers['content-type']).to.match(/^application\/json/);
    expectResponseMatchesSpec(res, 'post', '/events');
    expect(head(), 'the bus issued an event id').to.equal(headBefore);
    const sentinel = await publish(t.url, newsroom, { topics: ['public/sentinel'], data: `sentinel ${++sentinels}` });
    await watcher.waitFor((e) => e.id === sentinel);
    expect(
      watcher.events.slice(seen).map((e) => e.id),
      'the watcher received something else',
    ).to.deep.equal([sentinel]);
    return res;
  }
  const post =
    (body: unknown, token = newsroom) =>
    () =>
      postJson(`${t.url}/events`, body, token);
  const valid = { topics: ['public/news'], data: { text: 'hi' } };

  describe('topics', () => {
    it('answers 400 invalid_request when topics is missing', async () => {
      await expectRefused(post({ data: 1 }), 400, 'invalid_request', 'topics');
    });
    it('answers 400 invalid_request when topics is an empty array', async () => {
      await expectRefused(post({ topics: [], data: 1 }), 400, 'invalid_request', 'topics');
    });
    it('answers 400 invalid_request when 17 topics are given', async () => {
      const topics = Array.from({ length: 17 }, (_, i) => `public/t${i}`);
      await expectRefused(post({ topics, data: 1 }), 400, 'invalid_request', 'topics');
    });
    it('answers 400 invalid_request when topics is a string, not an array', async () => {
      await expectRefused(post({ topics: 'public/news', data: 1 }), 400, 'invalid_request', 'topics');
    });
    it('answers 400 invalid_request when a topic is not a string', async () => {
      await expectRefused(post({ topics: [42], data: 1 }), 400, 'invalid_request');
    });

    const invalid: Array<[string, string]> = [
      ['an empty segment', 'a//b'],
      ['a dot-dot segment', '..'],
      ['a dot-dot path', 'public/../users/alice/inbox'],
      ['a single-dot segment', 'a/./b'],
      ['a non-ASCII letter', 'é'],
      ['a Greek look-alike', 'public/nеws'],
      ['257 characters', `public/${Array.from({ length: 5 }, () => 'x'.repeat(49)).join('/')}`.slice(0, 256) + 'y'],
      ['17 segments', Array.from({ length: 17 }, (_, i) => `s${i}`).join('/')],
      ['a 65-character segment', `public/${'a'.repeat(65)}`],
      ['a single-segment wildcard', 'a/*'],
      ['a multi-segment wildcard', 'a/**'],
      ['a leading slash', '/public/news'],
      ['a trailing slash', 'public/news/'],
      ['an empty name', ''],
      ['a space', 'public/new s'],
      ['a percent-encoded slash', 'public/a%2Fb'],
      ['a backslash', 'public\\news'],
      ['a NUL', 'public/news\u0000'],
      ['a line break', 'public/news\nevent: reset'],
    ];
    for (const [what, topic] of invalid) {
      it(`answers 400 invalid_topic when a topic has ${what}`, async () => {
        if (what === '257 characters') expect(topic.length).to.equal(257);
        await expectRefused(post({ topics: ['public/ok', topic], data: 1 }), 400, 'invalid_topic');
      });
    }
  });

  describe('type', () => {
    const invalid: Array<[string, string]> = [
      ['a CR', 'note\rid: 1'],
      ['an LF', 'note\nevent: reset'],
      ['a CRLF', 'note\r\ndata: forged'],
      ['a NUL', 'note\u0000'],
      ['a space', 'new note'],
      ['65 characters', 'a'.repeat(65)],
      ['no characters', ''],
      ['a non-ASCII letter', 'nöte'],
    ];
    for (const [what, type] of invalid) {
      it(`answers 400 invalid_event_type when the type has ${what}`, async () => {
        await expectRefused(post({ ...valid, type }), 400, 'invalid_event_type', 'type');
      });
    }
    it('answers 400 invalid_request when the type is not a string', async () => {
      await expectRefused(post({ ...valid, type: 7 }), 400, 'invalid_request', 'type');
    });
    for (const type of ['connected', 'reset', 'closed', 'token-expiring', 'token-renewed']) {
      it(`answers 400 reserved_event_type when the type is the control event name ${type}`, async () => {
        await expectRefused(post({ ...valid, type }), 400, 'reserved_event_type', 'type');
      });
    }
    it('accepts a 64-character type and delivers it as the event name', async () => {
      const type = 'a'.repeat(64);
      const id = await publish(t.url, newsroom, { ...valid, type });
      const event = await watcher.waitFor((e) => e.id === id);
      expect(event.type).to.equal(type);
    });
    it('delivers an event without a type as `message`', async () => {
      const id = await publish(t.url, newsroom, valid);
      const event = await watcher.waitFor((e) => e.id === id);
      expect(event.type).to.equal('message');
    });
  });

  describe('data', () => {
    it('answers 400 invalid_request when data is missing', async () => {
      await expectRefused(post({ topics: ['public/news'] }), 400, 'invalid_request', 'data');
    });
    it('accepts data: null with 201 and delivers null', async () => {
      const res = await readJson(await postJson(`${t.url}/events`, { topics: ['public/news'], data: null }, newsroom));
      expect(res.status).to.equal(201);
      expectResponseMatchesSpec(res, 'post', '/events');
      const event = await watcher.waitFor((e) => e.id === res.body.id);
      expect(event.data).to.equal('null');
    });
    it('answers 413 payload_too_large when the serialised data is one byte over MAX_DATA_BYTES', async () => {
      const max = t.config.limits.maxDataBytes;
      await expectRefused(post({ topics: ['public/news'], data: 'x'.repeat(max - 1) }), 413, 'payload_too_large');
    });
    it('accepts data whose serialised size is exactly MAX_DATA_BYTES', async () => {
      const max = t.config.limits.maxDataBytes;
      const id = await publish(t.url, newsroom, { topics: ['public/news'], data: 'x'.repeat(max - 2) });
      const event = await watcher.waitFor((e) => e.id === id);
      expect(event.data.length).to.equal(max);
    });
    it('counts MAX_DATA_BYTES in UTF-8 bytes, not characters', async () => {
      const max = t.config.limits.maxDataBytes;
      await expectRefused(post({ topics: ['public/news'], data: 'é'.repeat(max / 2) }), 413, 'payload_too_large');
    });
    it('answers 413 payload_too_large when the body is larger than MAX_BODY_BYTES', async () => {
      const body = { topics: ['public/news'], data: 'x'.repeat(t.config.limits.maxBodyBytes) };
      await expectRefused(post(body), 413, 'payload_too_large');
    });
    it('answers 400 invalid_request when data is nested 40 deep', async () => {
      let data: unknown = 'leaf';
      for (let i = 0; i < 40; i++) data = { d: data };
      await expectRefused(post({ topics: ['public/news'], data }), 400, 'invalid_request', 'data');
    });
    it('accepts data nested 32 deep and refuses 33', async () => {
      const nest = (depth: number) => {
        let data: unknown = 1;
        for (let i = 0; i < depth; i++) data = [data];
        return data;
      };
      const id = await publish(t.url, newsroom, { topics: ['public/news'], data: nest(32) });
      await watcher.waitFor((e) => e.id === id);
      await expectRefused(post({ topics: ['public/news'], data: nest(33) }), 400, 'invalid_request', 'data');
    });
    it('delivers data that tries to forge SSE fields as exactly one event with the exact data', async () => {
      const forged = 'x\n\ndata: forged\n\nevent: reset\nid: 999999999999999-0\r\n\r\nretry: 1\r:';
      const id = await publish(t.url, newsroom, { topics: ['public/forge'], type: 'note', data: forged });
      const objectId = await publish(t.url, newsroom, { topics: ['public/forge'], type: 'note', data: { '\n\nevent: reset\n': forged } });
      await watcher.waitFor((e) => e.id === objectId);
      const events = watcher.events.filter((e) => e.id === id || e.id === objectId);
      expect(events).to.have.length(2);
      expect(events[0]!.type).to.equal('note');
      expect(JSON.parse(events[0]!.data)).to.equal(forged);
      expect(JSON.parse(events[1]!.data)).to.deep.equal({ '\n\nevent: reset\n': forged });
      expect(watcher.events.filter((e) => e.type === 'reset' || e.data.startsWith('forged'))).to.have.length(0);
      expect(watcher.source.readyState).to.equal(watcher.source.OPEN);
    });
  });

  describe('body', () => {
    it('answers 400 invalid_request when the body has an unknown field', async () => {
      await expectRefused(post({ ...valid, priority: 'high' }), 400, 'invalid_request');
    });
    it('answers 415 unsupported_media_type to a form body', async () => {
      await expectRefused(
        () =>
          fetch(`${t.url}/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${newsroom}`, 'content-type': 'application/x-www-form-urlencoded' },
            body: 'topics=public%2Fnews&data=1',
          }),
        415,
        'unsupported_media_type',
      );
    });
    it('answers 415 unsupported_media_type to a JSON body sent as text/plain', async () => {
      await expectRefused(
        () =>
          fetch(`${t.url}/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${newsroom}`, 'content-type': 'text/plain' },
            body: JSON.stringify(valid),
          }),
        415,
        'unsupported_media_type',
      );
    });
    it('answers 415 unsupported_media_type to a body without a content type', async () => {
      await expectRefused(
        () =>
          fetch(`${t.url}/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${newsroom}` },
            body: new Uint8Array(Buffer.from(JSON.stringify(valid))),
          }),
        415,
        'unsupported_media_type',
      );
    });
    it('answers 400 invalid_json to a body that is not JSON', async () => {
      await expectRefused(
        () =>
          fetch(`${t.url}/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${newsroom}`, 'content-type': 'application/json' },
            body: '{"topics": ["public/news"], "data": ',
          }),
        400,
        'invalid_json',
      );
    });
    it('answers 400 invalid_request to a JSON array body', async () => {
      await expectRefused(post([valid]), 400, 'invalid_request');
    });
    for (const [what, key] of [
      ['empty', ''],
      ['with a space', 'my key'],
      ['with a slash', 'a/b'],
      ['129 characters', 'k'.repeat(129)],
      ['not a string', 42],
    ] as const) {
      it(`answers 400 invalid_request when the idempotencyKey is ${what}`, async () => {
        await expectRefused(post({ ...valid, idempotencyKey: key }), 400, 'invalid_request', 'idempotencyKey');
      });
    }
  });

  describe('authorisation', () => {
    it('answers 401 without a token', async () => {
      const res = await expectRefused(() => postJson(`${t.url}/events`, valid), 401, 'unauthorized');
      expect(res.headers['www-authenticate']).to.match(/^Bearer realm="notify"/);
    });
    it('answers 403 insufficient_scope when a subscribe-only user publishes, even to its own inbox', async () => {
      const res = await expectRefused(post({ topics: ['users/alice/inbox'], data: 'self' }, alice), 403, 'insufficient_scope');
      expect(res.headers['www-authenticate']).to.contain('error="insufficient_scope"');
    });
    it('answers 403 and publishes nothing, not even to the allowed topic, when one of the topics is forbidden', async () => {
      const subscriber = openStream(`${t.url}/events?topic=public/allowed`, alice);
      try {
        await subscriber.waitFor((e) => e.type === 'connected');
        const res = await expectRefused(post({ topics: ['public/allowed', 'private/x'], data: 'half' }), 403, 'insufficient_scope');
        expect(res.headers['www-authenticate']).to.contain('error="insufficient_scope"');
        await expectRefused(post({ topics: ['public/allowed', 'users/alice'], data: 'half' }), 403, 'insufficient_scope');
        const id = await publish(t.url, newsroom, { topics: ['public/allowed'], data: 'whole' });
        await subscriber.waitFor((e) => e.id === id);
        expect(publishedEvents(subscriber).map((e) => e.data)).to.deep.equal(['"whole"']);
      } finally {
        subscriber.close();
      }
    });
  });

  describe('accepted publishes', () => {
    it('answers 201 with the id, the topics and the type, deduplicating repeated topics and delivering once', async () => {
      const res = await readJson(
        await postJson(`${t.url}/events`, { topics: ['public/a', 'public/a', 'public/b'], type: 'note', data: 1 }, newsroom),
      );
      expect(res.status).to.equal(201);
      expectResponseMatchesSpec(res, 'post', '/events');
      expect(res.body.id).to.match(/^\d+-\d+$/);
      expect(res.body).to.deep.equal({ id: res.body.id, topics: ['public/a', 'public/b'], type: 'note' });
      const sentinel = await publish(t.url, newsroom, { topics: ['public/sentinel'], data: 'after' });
      await watcher.waitFor((e) => e.id === sentinel);
      expect(watcher.events.filter((e) => e.id === res.body.id)).to.have.length(1);
    });
  });
});
