import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { errorOf } from '../helpers/errors.js';
import { expectResponseMatchesSpec } from '../helpers/openapi.js';
import { openStream, postJson, startServer, type StreamClient, type TestServer } from '../helpers/server.js';
import { publish, waitUntil } from '../helpers/streams.js';

const TOKEN = 'metrics-token-0123456789-abcdefghijkl';

/** The value of one sample line (`name{labels} value`) in Prometheus text. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('GET /metrics', () => {
  describe('with METRICS=token', () => {
    let t: TestServer;
    let stream: StreamClient | undefined;
    before(async () => {
      t = await startServer({ METRICS: 'token', METRICS_TOKEN: TOKEN });
      await t.addAccount('alice', ['user']);
      await t.addAccount('newsroom', ['publisher']);
    });
    after(async () => {
      stream?.close();
      await t.close();
    });
    const scrape = (token?: string) =>
      fetch(`${t.url}/metrics`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

    it('answers 401 without the metrics token or with another one (an access token included)', async () => {
      for (const token of [undefined, 'wrong', (await t.login('alice')).access_token]) {
        const res = await scrape(token);
        expect(res.status).to.equal(401);
        const body = await res.json();
        expectResponseMatchesSpec({ status: res.status, headers: Object.fromEntries(res.headers), body }, 'get', '/metrics');
      }
    });

    it('counts streams, published and delivered events, latency, renewals, history and auth failures', async () => {
      const alice = (await t.login('alice')).access_token;
      stream = openStream(`${t.url}/events?topic=public/**`, alice);
      const connected = JSON.parse((await stream.waitFor((e) => e.type === 'connected')).data);
      const newsroom = (await t.login('newsroom')).access_token;
      await publish(t.url, newsroom, { topics: ['public/a', 'public/b'], data: 1 });
      await publish(t.url, newsroom, { topics: ['public/a'], data: 2, idempotencyKey: 'once' });
      await publish(t.url, newsroom, { topics: ['public/a'], data: 2, idempotencyKey: 'once' }).catch(() => undefined); // a repeat: 200, not counted
      await stream.waitFor((e) => e.data === '2');
      const renewed = await fetch(`${t.url}${connected.renewUrl}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${(await t.login('alice')).access_token}` },
      });
      expect(renewed.status).to.equal(200);
      await postJson(`${t.url}/auth/login`, { username: 'alice', password: 'wrong' });
      await fetch(`${t.url}/events?topic=public/**`, { headers: { authorization: 'Bearer x.y.z', accept: 'text/event-stream' } });

      const res = await scrape(TOKEN);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/plain/);
      const text = await res.text();
      expectResponseMatchesSpec({ status: 200, headers: Object.fromEntries(res.headers), body: text }, 'get', '/metrics');
      expect(sample(text, 'notify_open_streams')).to.equal(1);
      expect(sample(text, 'notify_events_published_total')).to.equal(2);
      expect(sample(text, 'notify_events_delivered_total')).to.equal(2); // one subscriber, two events: counted per event, not per topic
      expect(sample(text, 'notify_publish_to_write_seconds_count')).to.equal(2);
      expect(sample(text, 'notify_inband_renewals_total')).to.equal(1);
      expect(sample(text, 'notify_history_events')).to.equal(3); // the first event is in two topics' history
      expect(sample(text, 'notify_auth_failures_total{reason="invalid_credentials"}')).to.equal(1);
      expect(text).to.match(/^notify_auth_failures_total\{reason="[a-z_]+"\} [1-9]/m); // the bad bearer token, by its reason
      expect(sample(text, 'notify_slow_consumer_disconnects_total')).to.equal(0);
      stream.close();
      await waitUntil(() => t.server.registry.size === 0, 2000, 'the stream to end');
      expect(sample(await (await scrape(TOKEN)).text(), 'notify_open_streams')).to.equal(0);
    });
  });

  it('is refused on the main port with METRICS=listen, and served on the separate address without auth', async () => {
    const t = await startServer({ METRICS: 'listen', METRICS_LISTEN: '127.0.0.1:0' });
    try {
      const main = await fetch(`${t.url}/metrics`);
      expect(main.status).to.equal(403);
      expect((await main.json()).error).to.equal('metrics_disabled');
      const address = t.server.metricsAddress();
      expect(address, 'metricsAddress()').to.not.equal(undefined);
      const res = await fetch(`http://127.0.0.1:${address!.port}/metrics`);
      expect(res.status).to.equal(200);
      expect(await res.text()).to.contain('notify_open_streams 0');
      expect((await fetch(`http://127.0.0.1:${address!.port}/`)).status).to.equal(404);
    } finally {
      await t.close();
    }
  });

  it('counts a slow-consumer disconnect once per stream (the registry reports stream ends)', async () => {
    const metrics = new ServerMetrics({ openStreams: () => 0, historyEvents: () => 0, presenceMembers: async () => 0 });
    metrics.streamEnded('client_gone');
    metrics.streamEnded('slow_consumer');
    expect(sample(await metrics.metrics(), 'notify_slow_consumer_disconnects_total')).to.equal(1);
  });

  it('reports the presence gauge as NaN when the store cannot be read, and the scrape still answers', async () => {
    const metrics = new ServerMetrics({
      openStreams: () => 0,
      historyEvents: () => 0,
      presenceMembers: () => Promise.reject(new Error('redis down')),
    });
    const text = await metrics.metrics();
    expect(text).to.contain('notify_open_streams 0');
    expect(text).to.match(/^notify_presence_members nan$/im);
  });

  it('refuses to start with METRICS=token and no (or a short) METRICS_TOKEN, naming the variable', () => {
    const fail = (env: Record<string, string>) => {
      const error = errorOf(() => loadConfig(env));
      expect(error).to.be.instanceOf(ConfigError);
      return error as ConfigError;
    };
    expect(fail({ METRICS: 'token' }).key).to.equal('METRICS_TOKEN');
    expect(fail({ METRICS: 'token', METRICS_TOKEN: 'short' }).key).to.equal('METRICS_TOKEN');
    expect(fail({ METRICS: 'sometimes' }).key).to.equal('METRICS');
    expect(fail({ METRICS_LISTEN: 'nope' }).key).to.equal('METRICS_LISTEN');
    expect(loadConfig({ METRICS: 'listen', METRICS_LISTEN: '[::1]:9464' }).metrics.listen).to.deep.equal({ host: '::1', port: 9464 });
  });
});
