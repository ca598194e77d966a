import { expect } from 'chai';
import { openStream, postJson, startServer, type TestServer } from '../helpers/server.js';

describe('publish and subscribe, end to end', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
    await t.addAccount('alice', ['user']);
    await t.addAccount('newsroom', ['publisher']);
  });
  after(() => t.close());

  it('delivers an event published over REST to an EventSource subscriber, once, with its id and type', async () => {
    const alice = await t.login('alice');
    const publisher = await t.login('newsroom');
    const stream = openStream(`${t.url}/events?topic=users/alice/**&topic=public/news`, alice.access_token, { types: ['greeting'] });
    try {
      const connected = await stream.waitFor((e) => e.type === 'connected');
      expect(JSON.parse(connected.data).topics).to.deep.equal(['users/alice/**', 'public/news']);
      const res = await postJson(
        `${t.url}/events`,
        { topics: ['users/alice/inbox', 'public/news'], type: 'greeting', data: { text: 'hi\nthere' } },
        publisher.access_token,
      );
      expect(res.status).to.equal(201);
      const { id } = (await res.json()) as { id: string };
      const received = await stream.waitFor((e) => e.type === 'greeting');
      expect(received.id).to.equal(id);
      expect(JSON.parse(received.data)).to.deep.equal({ text: 'hi\nthere' });
      await postJson(`${t.url}/events`, { topics: ['public/news'], data: 'second' }, publisher.access_token);
      await stream.waitFor((e) => e.data === '"second"');
      expect(stream.events.filter((e) => e.type === 'greeting')).to.have.length(1);
    } finally {
      stream.close();
    }
  });
});
