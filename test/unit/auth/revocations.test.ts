import { expect } from 'chai';
import { RevocationList, type Revocation } from '../../../src/auth/revocations.js';

const T0 = 1_700_000_000_500; // half-way through a second
const T0_S = Math.floor(T0 / 1000);
const RETENTION = 305_000;

describe('RevocationList', () => {
  let now: number;
  let list: RevocationList;
  const claims = (subject: string, issuedAt: number, sessionId?: string) => ({ subject, issuedAt, sessionId });

  beforeEach(() => {
    now = T0;
    list = new RevocationList({ retentionMs: RETENTION, clock: () => now });
  });

  describe('session revocation', () => {
    it('revokes every token of the session when the session is revoked', () => {
      list.revokeSession('fam-1');
      expect(list.isRevoked(claims('alice', T0_S - 100, 'fam-1'))).to.equal(true);
      expect(list.isRevoked(claims('alice', T0_S + 100, 'fam-1'))).to.equal(true);
    });

    it('leaves other sessions and tokens without a session alone', () => {
      list.revokeSession('fam-1');
      expect(list.isRevoked(claims('alice', T0_S, 'fam-2'))).to.equal(false);
      expect(list.isRevoked(claims('alice', T0_S))).to.equal(false);
    });
  });

  describe('subject revocation', () => {
    it('revokes tokens issued up to and including the current second', () => {
      list.revokeSubject('alice', 'password_changed');
      expect(list.isRevoked(claims('alice', T0_S - 1))).to.equal(true);
      expect(list.isRevoked(claims('alice', T0_S))).to.equal(true);
      expect(list.isRevoked(claims('alice', T0_S, 'any-session'))).to.equal(true);
    });

    it('accepts tokens issued after the revoked second and tokens of other subjects', () => {
      list.revokeSubject('alice', 'password_changed');
      expect(list.isRevoked(claims('alice', T0_S + 1))).to.equal(false);
      expect(list.isRevoked(claims('bob', T0_S - 1))).to.equal(false);
    });

    it('gives notBefore as the second after the revocation, so new tokens are not caught by it', () => {
      expect(list.notBefore('alice')).to.equal(undefined);
      list.revokeSubject('alice', 'removed');
      expect(list.notBefore('alice')).to.equal(T0_S + 1);
      expect(list.isRevoked(claims('alice', list.notBefore('alice')!))).to.equal(false);
      expect(list.notBefore('bob')).to.equal(undefined);
    });

    it('moves the boundary forward when the subject is revoked again later', () => {
      list.revokeSubject('alice', 'first');
      now = T0 + 10_000;
      list.revokeSubject('alice', 'second');
      expect(list.isRevoked(claims('alice', T0_S + 10))).to.equal(true);
      expect(list.notBefore('alice')).to.equal(T0_S + 11);
    });
  });

  describe('retention', () => {
    it('forgets entries once the retention has passed', () => {
      list.revokeSession('fam-1');
      list.revokeSubject('alice', 'removed');
      now = T0 + RETENTION;
      list.revokeSession('fam-2'); // any revocation sweeps
      expect(list.size).to.equal(1);
      expect(list.isRevoked(claims('x', T0_S, 'fam-1'))).to.equal(false);
      expect(list.isRevoked(claims('alice', T0_S))).to.equal(false);
      expect(list.notBefore('alice')).to.equal(undefined);
      expect(list.isRevoked(claims('x', T0_S, 'fam-2'))).to.equal(true);
    });

    it('keeps entries when the retention has not passed yet', () => {
      list.revokeSession('fam-1');
      list.revokeSubject('alice', 'removed');
      now = T0 + RETENTION - 1;
      list.revokeSession('fam-2');
      expect(list.size).to.equal(3);
      expect(list.isRevoked(claims('x', T0_S, 'fam-1'))).to.equal(true);
      expect(list.isRevoked(claims('alice', T0_S))).to.equal(true);
    });

    it('restarts the retention when a session is revoked again', () => {
      list.revokeSession('fam-1');
      now = T0 + RETENTION - 1;
      list.revokeSession('fam-1');
      now = T0 + RETENTION + 10;
      list.revokeSession('fam-2');
      expect(list.isRevoked(claims('x', T0_S, 'fam-1'))).to.equal(true);
    });
  });

  describe('listeners', () => {
    it('tells every listener about each revocation as it happens', () => {
      const a: Revocation[] = [];
      const b: Revocation[] = [];
      list.onRevoke((r) => a.push(r));
      list.onRevoke((r) => b.push(r));
      list.revokeSession('fam-1');
      list.revokeSubject('alice', 'password_changed');
      const expected = [
        { kind: 'session', sessionId: 'fam-1' },
        { kind: 'subject', subject: 'alice', reason: 'password_changed' },
      ];
      expect(a).to.deep.equal(expected);
      expect(b).to.deep.equal(expected);
    });

    it('stops calling a listener when it has been removed', () => {
      const seen: Revocation[] = [];
      const off = list.onRevoke((r) => seen.push(r));
      list.revokeSession('fam-1');
      off();
      list.revokeSession('fam-2');
      expect(seen).to.have.length(1);
    });

    it('has already recorded the revocation when a listener runs', () => {
      let revokedInListener: boolean | undefined;
      list.onRevoke(() => {
        revokedInListener = list.isRevoked(claims('alice', T0_S, 'fam-1'));
      });
      list.revokeSession('fam-1');
      expect(revokedInListener).to.equal(true);
    });
  });
});
