import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { runCli } from '../../src/cli/run-cli.js';
import { NotifyClient } from '../../src/client/index.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/streams.js';

function capture(): PassThrough & { text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return Object.assign(stream, { text: () => Buffer.concat(chunks).toString('utf8') });
}

describe('notify publish, tail and token against a running server', () => {
  let t: TestServer;
  const SECRET = 'svc-secret-that-is-long-enough';

  before(async () => {
    t = await startServer();
    await t.addAccount('svc', ['publisher'], { kind: 'service', password: SECRET });
    await t.addAccount('reader', ['user'], { kind: 'service', password: SECRET });
  });
  after(() => t.close());

  /** Runs one command line in-process; `stdin` is piped (and ended) unless `keepOpen`. */
  function start(argv: string[], options: { env?: Record<string, string>; stdin?: string } = {}) {
    const stdout = capture();
    const stderr = capture();
    const stdin = new PassThrough();
    stdin.end(options.stdin ?? '');
    const exit = runCli(argv, {
      stdin,
      stdout,
      stderr,
      env: { NOTIFY_URL: t.url, ...options.env },
      openServices: () => {
        throw new Error('remote commands open no local services');
      },
    });
    return { exit, stdout, stderr };
  }
  const run = async (argv: string[], options: Parameters<typeof start>[1] = {}) => {
    const r = start(argv, options);
    return { code: await r.exit, out: r.stdout.text(), err: r.stderr.text() };
  };

  it('prints --help for each command, with exit code 0', async () => {
    for (const argv of [
      ['publish', '--help'],
      ['tail', '--help'],
      ['token', '--help'],
      ['token', 'get', '--help'],
      ['token', 'show', '--help'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).to.equal(0);
      expect(r.out, argv.join(' ')).to.match(/^Usage: notify /);
    }
    expect((await run(['--help'])).out).to.match(/publish[\s\S]*tail[\s\S]*token/);
  });

  it('token get prints a token for a service client (secret on stdin), and token show prints its claims', async () => {
    const got = await run(['token', 'get', '--client', 'svc'], { stdin: `${SECRET}\n` });
    expect(got.code, got.err).to.equal(0);
    const token = got.out.trim();
    expect(token.split('.')).to.have.length(3);
    const shown = await run(['token', 'show'], { stdin: `${token}\n` });
    expect(shown.code).to.equal(0);
    const summary = JSON.parse(shown.out);
    expect(summary.claims.sub).to.equal('svc');
    expect(summary.claims.topics.publish).to.include('public/**');
    expect(summary.verified).to.equal(false);
    expect(summary.expired).to.equal(false);
  });

  it('token get exits 3 on a wrong secret and 2 without --client; token show exits 1 on a non-JWT', async () => {
    const refused = await run(['token', 'get', '--client', 'svc'], { env: { NOTIFY_CLIENT_SECRET: 'wrong' } });
    expect(refused.code).to.equal(3);
    expect(refused.err).to.match(/^notify: invalid_client/);
    expect((await run(['token', 'get'])).code).to.equal(2);
    expect((await run(['token', 'show', 'not-a-token'])).code).to.equal(1);
  });

  it('publish sends JSON data, answers once per idempotency key, and exits 3 when the grants do not allow it', async () => {
    const env = { NOTIFY_CLIENT_SECRET: SECRET };
    const first = await run(['publish', 'public/news', '--client', 'svc', '--data', '{"headline":"hi"}', '--key', 'k1', '--json'], { env });
    expect(first.code, first.err).to.equal(0);
    const again = await run(['publish', 'public/news', '--client', 'svc', '--data', '{"headline":"hi"}', '--key', 'k1'], { env });
    expect(again.out).to.equal(`Already published ${JSON.parse(first.out).id}\n`);
    const fromStdin = await run(['publish', 'public/news'], { env: { NOTIFY_TOKEN: await tokenFor('svc') }, stdin: '[1,2,3]' });
    expect(fromStdin.code, fromStdin.err).to.equal(0);
    const refused = await run(['publish', 'private/x', '--client', 'svc', '--data', '1'], { env });
    expect(refused.code).to.equal(3);
    expect(refused.err).to.match(/insufficient_scope/);
    expect((await run(['publish', 'public/news', '--data', '{bad', '--client', 'svc'], { env })).code).to.equal(2);
    expect((await run(['publish', 'public/news', '--data', '1'])).code).to.equal(2); // no credentials
  });

  it('tail prints events as they arrive, resumes after --last-event-id, and stops after --count', async () => {
    const publisher = new NotifyClient({ baseUrl: t.url, clientCredentials: { id: 'svc', secret: SECRET } });
    const first = await publisher.publish(['public/a'], { n: 1 });
    await publisher.publish(['public/a'], { n: 2 });
    const tail = start(['tail', 'public/**', '--client', 'reader', '--last-event-id', first.id, '--count', '3'], {
      env: { NOTIFY_CLIENT_SECRET: SECRET },
    });
    await waitUntil(() => tail.stdout.text().split('\n').length >= 2, 5000, 'the replayed event');
    t.server.http.closeAllConnections(); // a drop: tail resumes by itself
    await publisher.publish(['public/a'], { n: 3 });
    await publisher.publish(['public/a'], { n: 4 });
    expect(await tail.exit).to.equal(0);
    const lines = tail.stdout.text().trim().split('\n');
    expect(lines.map((line) => JSON.parse(line.split(' ').slice(2).join(' ')).n)).to.deep.equal([2, 3, 4]);
    expect(lines[0]).to.match(/^\d+-\d+ message \{"n":2\}$/);
    publisher.close();
  });

  it('tail prints events of every type by default, and only the given types with --type', async () => {
    const publisher = new NotifyClient({ baseUrl: t.url, clientCredentials: { id: 'svc', secret: SECRET } });
    const { id: from } = await publisher.publish(['public/b'], { before: true });
    const first = await publisher.publish(['public/b'], { text: 'hello' }, { type: 'greeting' });
    await publisher.publish(['public/b'], { n: 1 });
    await publisher.publish(['public/b'], { n: 2 }, { type: 'score.v2' });
    publisher.close();
    const env = { NOTIFY_CLIENT_SECRET: SECRET };
    const all = await run(['tail', 'public/b', '--client', 'reader', '--last-event-id', from, '--count', '3'], { env });
    expect(all.code, all.err).to.equal(0);
    expect(
      all.out
        .trim()
        .split('\n')
        .map((line) => line.split(' ')[1]),
    ).to.deep.equal(['greeting', 'message', 'score.v2']);
    const json = await run(['tail', 'public/b', '--client', 'reader', '--last-event-id', from, '--count', '1', '--json'], { env });
    expect(JSON.parse(json.out)).to.deep.include({ id: first.id, type: 'greeting', data: { text: 'hello' } });
    const only = await run(['tail', 'public/b', '--client', 'reader', '--last-event-id', from, '--count', '1', '--type', 'score.v2'], {
      env,
    });
    expect(only.out).to.match(/^\d+-\d+ score\.v2 \{"n":2\}\n$/);
  });

  it('tail exits 3 when the subscription is refused', async () => {
    const r = await run(['tail', 'users/alice/**', '--client', 'reader'], { env: { NOTIFY_CLIENT_SECRET: SECRET } });
    expect(r.code).to.equal(3);
    expect(r.err).to.match(/^notify: forbidden/);
  });

  async function tokenFor(name: string): Promise<string> {
    const r = await run(['token', 'get', '--client', name], { env: { NOTIFY_CLIENT_SECRET: SECRET } });
    return r.out.trim();
  }
  void PASSWORD;
});
