import { expect } from 'chai';
import { RevocationRelay } from '../../../../src/backends/redis/revocation-relay.js';
import { RevocationList, type Revocation, type RevocationOrigin } from '../../../../src/auth/revocations.js';
import { connectRedis, type RedisClient } from '../../../../src/backends/redis/connect.js';
import { deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../../../helpers/redis.js';

const RETENTION = 305_000;
const claims = (subject: string, issuedAt: number, sessionId?: string) => ({ subject, issuedAt, sessionId });

describe('RevocationList.applyRemote', () => {
  const T0 = 1_700_000_000_500;
  let now: number;
  let list: RevocationList;
  let heard: Array<[Revocation, RevocationOrigin]>;

  beforeEach(() => {
    now = T0;
    list = new RevocationList({ retentionMs: RETENTION, clock: () => now });
    heard = [];
    list.onRevoke((revocation, origin) => heard.push([revocation, origin]));
  });

  it('revokes a session and tells listeners it came from elsewhere', () => {
    list.applyRemote({ kind: 'session', sessionId: 'fam-1' }, T0 - 1000);
    expect(list.isRevoked(claims('alice', 0, 'fam-1'))).to.equal(true);
    expect(heard).to.deep.equal([[{ kind: 'session', sessionId: 'fam-1' }, 'remote']]);
    list.revokeSession('fam-2');
    expect(heard[1]![1]).to.equal('local');
  });

  it('revokes a subject through the second it was revoked at on the other instance', () => {
    const at = T0 - 10_000;
    list.applyRemote({ kind: 'subject', subject: 'bob', reason: 'password_changed' }, at);
    expect(list.isRevoked(claims('bob', Math.floor(at / 1000)))).to.equal(true);
    expect(list.isRevoked(claims('bob', Math.floor(at / 1000) + 1))).to.equal(false);
    expect(list.notBefore('bob')).to.equal(Math.floor(at / 1000) + 1);
  });

  it('ignores a revocation older than the retention', () => {
    list.applyRemote({ kind: 'session', sessionId: 'old' }, T0 - RETENTION - 1);
    expect(list.isRevoked(claims('alice', 0, 'old'))).to.equal(false);
    expect(heard).to.deep.equal([]);
  });
});

describe('RevocationRelay', () => {
  let prefix: string;
  const connections: RedisClient[] = [];
  const relays: RevocationRelay[] = [];

  async function instance(): Promise<RevocationList> {
    const revocations = new RevocationList({ retentionMs: RETENTION });
    const commands = await connectRedis(TEST_REDIS_URL, 'commands', () => undefined);
    const blocking = await connectRedis(TEST_REDIS_URL, 'blocking', () => undefined);
    connections.push(commands);
    const relay = new RevocationRelay({
      revocations,
      commands,
      blocking,
      keyPrefix: prefix,
      onError: () => undefined,
    });
    await relay.start();
    relays.push(relay);
    return revocations;
  }

  const eventually = async (check: () => boolean) => {
    const deadline = Date.now() + 3000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  beforeEach(() => {
    prefix = uniquePrefix('revocations');
  });

  afterEach(async () => {
    for (const relay of relays.splice(0)) await relay.stop();
    for (const connection of connections.splice(0)) connection.disconnect();
    await deleteKeys(TEST_REDIS_URL, prefix);
  });

  it('applies a revocation made on one instance on the others, and not twice on its own', async () => {
    const a = await instance();
    const b = await instance();
    const onA: Array<[Revocation, RevocationOrigin]> = [];
    const onB: Array<[Revocation, RevocationOrigin]> = [];
    a.onRevoke((revocation, origin) => onA.push([revocation, origin]));
    b.onRevoke((revocation, origin) => onB.push([revocation, origin]));
    a.revokeSession('fam-1');
    // A token issued in the second of the revocation (read before it, so the test cannot cross a second boundary).
    const issuedAt = Math.floor(Date.now() / 1000);
    b.revokeSubject('carol', 'account_removed');
    await eventually(() => onA.length === 2 && onB.length === 2);
    expect(b.isRevoked(claims('x', 0, 'fam-1'))).to.equal(true);
    expect(a.isRevoked(claims('carol', issuedAt))).to.equal(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(onA.map(([, origin]) => origin)).to.deep.equal(['local', 'remote']);
    expect(onB.map(([, origin]) => origin)).to.deep.equal(['local', 'remote']);
  });

  it('gives an instance that starts later every revocation still within the retention', async () => {
    const a = await instance();
    a.revokeSession('fam-early');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const late = await instance();
    expect(late.isRevoked(claims('x', 0, 'fam-early'))).to.equal(true);
  });
});
