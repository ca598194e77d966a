import { createHash, randomBytes } from 'node:crypto';
import type { RedisClient } from './connect.js';
import { orUnavailable } from './redis-unavailable-error.js';
import type { RefreshGrant, RefreshTokenStore, RotateResult } from '../../auth/refresh-token-store.js';

export interface RedisRefreshTokenStoreOptions {
  /** A `commands` connection (`redis/connect.ts`); the store does not close it. */
  readonly client: RedisClient;
  readonly keyPrefix: string;
  readonly idleTtlMs: number;
  readonly absoluteTtlMs: number;
  /** Families per subject; past it the oldest is revoked (as in the memory store). */
  readonly maxFamiliesPerSubject?: number;
  readonly clock?: () => number;
}

const hash = (token: string) => createHash('sha256').update(token).digest('base64url');

/*
 * Keys (P = key prefix): P rt:{<family>}:f a hash {subject, client, expires, used, revoked,
 * current}; P rt:{<family>}:t:<token hash> -> family id; P rt:s:<subject> a sorted set of family
 * ids by issue time. A family's keys share the hash tag `{<family>}`, so on Redis Cluster they sit
 * in one slot and rotation stays one atomic script over keys it is given; the token carries its
 * family id (its first 16 characters) so the store can name those keys from the token alone. The
 * subject's set lives wherever its name hashes to and is updated in a separate step, before the
 * family exists, so revoking a subject never misses a family. Every key expires with its family's
 * absolute lifetime, so retired token hashes (kept for reuse detection) are bounded by one
 * family's rotations in that lifetime.
 */

/** Base64url characters of a family id (12 random bytes). */
const FAMILY_ID_LENGTH = 16;
const FAMILY_ID = /^[A-Za-z0-9_-]{16}$/;

/** KEYS: family, token. ARGV: family id, subject, client, now, expires, token hash. */
const ISSUE = `
redis.call('HSET', KEYS[1], 'subject', ARGV[2], 'client', ARGV[3], 'expires', ARGV[5], 'used', ARGV[4], 'revoked', '0', 'current', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[5])
return 1
`;

/**
 * Adds a family to its subject's set; answers the ids past the per-subject limit (oldest first),
 * which the caller revokes. KEYS: subject set. ARGV: family id, now, expires, max families.
 */
const ADD_TO_SUBJECT = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if excess <= 0 then return {} end
local ids = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
redis.call('ZREM', KEYS[1], unpack(ids))
return ids
`;

/**
 * The whole rotation in one script, so two concurrent refreshes with one token cannot both win:
 * the first makes its successor current, the second then finds its token retired (reuse) and
 * revokes the family. KEYS: family, token, successor token. ARGV: now, idle ttl, token hash, new hash.
 */
const ROTATE = `
local id = redis.call('GET', KEYS[2])
if not id then return {'unknown'} end
local f = redis.call('HMGET', KEYS[1], 'subject', 'client', 'expires', 'used', 'revoked', 'current')
if not f[1] then return {'unknown'} end
if f[5] == '1' then return {'revoked', id} end
local now = tonumber(ARGV[1])
if now >= tonumber(f[3]) or now >= tonumber(f[4]) + tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {'expired', id}
end
if f[6] ~= ARGV[3] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {'reused', id}
end
redis.call('HSET', KEYS[1], 'used', ARGV[1], 'current', ARGV[4])
redis.call('SET', KEYS[3], id, 'PXAT', f[3])
return {'ok', id, f[1], f[2]}
`;

/** KEYS: family, token. Answers {family id, subject} or nothing. */
const REVOKE = `
local id = redis.call('GET', KEYS[2])
if not id then return {} end
local subject = redis.call('HGET', KEYS[1], 'subject')
if not subject then return {} end
redis.call('HSET', KEYS[1], 'revoked', '1')
return {id, subject}
`;

/** KEYS: family. Answers 1 if the family exists (and is now revoked), 0 if it is gone. */
const REVOKE_FAMILY = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return 1
end
return 0
`;

type Scripted = RedisClient & {
  notifyRtIssue(...args: unknown[]): Promise<number>;
  notifyRtAddToSubject(...args: unknown[]): Promise<string[]>;
  notifyRtRotate(...args: unknown[]): Promise<string[]>;
  notifyRtRevoke(...args: unknown[]): Promise<string[]>;
  notifyRtRevokeFamily(...args: unknown[]): Promise<number>;
};

/**
 * Refresh-token families in Redis, shared by every instance (issue 4): a token rotated on one
 * instance and replayed on another is detected as reuse, and revoking works from anywhere. Same
 * rules as `MemoryRefreshTokenStore`; while Redis is unreachable every call fails with 503.
 */
export class RedisRefreshTokenStore implements RefreshTokenStore {
  private readonly client: Scripted;
  private readonly clock: () => number;

  constructor(private readonly options: RedisRefreshTokenStoreOptions) {
    this.clock = options.clock ?? Date.now;
    const client = options.client;
    client.defineCommand('notifyRtIssue', { numberOfKeys: 2, lua: ISSUE });
    client.defineCommand('notifyRtAddToSubject', { numberOfKeys: 1, lua: ADD_TO_SUBJECT });
    client.defineCommand('notifyRtRotate', { numberOfKeys: 3, lua: ROTATE });
    client.defineCommand('notifyRtRevoke', { numberOfKeys: 2, lua: REVOKE });
    client.defineCommand('notifyRtRevokeFamily', { numberOfKeys: 1, lua: REVOKE_FAMILY });
    this.client = client as Scripted;
  }

  async issue(subject: string, clientId: string): Promise<RefreshGrant> {
    const now = this.clock();
    const expires = now + this.options.absoluteTtlMs;
    const familyId = randomBytes(12).toString('base64url');
    const token = familyId + randomBytes(32).toString('base64url');
    // The subject's set first: a family that exists is always found by revokeSubject.
    const excess = await orUnavailable(() =>
      this.client.notifyRtAddToSubject(this.subjectKey(subject), familyId, now, expires, this.options.maxFamiliesPerSubject ?? 100),
    );
    await orUnavailable(() =>
      this.client.notifyRtIssue(
        this.familyKey(familyId),
        this.tokenKey(familyId, hash(token)),
        familyId,
        subject,
        clientId,
        now,
        expires,
        hash(token),
      ),
    );
    // Past the per-subject limit the oldest families are revoked (as in the memory store).
    await Promise.all(excess.map((id) => orUnavailable(() => this.client.notifyRtRevokeFamily(this.familyKey(id)))));
    return { token, familyId, subject, clientId };
  }

  async rotate(token: string): Promise<RotateResult> {
    const familyId = familyOf(token);
    if (familyId === undefined) return { ok: false, reason: 'unknown' };
    const next = familyId + randomBytes(32).toString('base64url');
    const digest = hash(token);
    const [status, , subject, clientId] = await orUnavailable(() =>
      this.client.notifyRtRotate(
        this.familyKey(familyId),
        this.tokenKey(familyId, digest),
        this.tokenKey(familyId, hash(next)),
        this.clock(),
        this.options.idleTtlMs,
        digest,
        hash(next),
      ),
    );
    if (status === 'ok') return { ok: true, grant: { token: next, familyId, subject: subject!, clientId: clientId! } };
    const reason = status as 'unknown' | 'reused' | 'revoked' | 'expired';
    return reason === 'unknown' ? { ok: false, reason } : { ok: false, reason, familyId };
  }

  async revoke(token: string): Promise<{ familyId: string; subject: string } | undefined> {
    const familyId = familyOf(token);
    if (familyId === undefined) return undefined;
    const [found, subject] = await orUnavailable(() =>
      this.client.notifyRtRevoke(this.familyKey(familyId), this.tokenKey(familyId, hash(token))),
    );
    return found === undefined ? undefined : { familyId, subject: subject! };
  }

  async revokeFamily(familyId: string): Promise<void> {
    if (!FAMILY_ID.test(familyId)) return;
    await orUnavailable(() => this.client.notifyRtRevokeFamily(this.familyKey(familyId)));
  }

  /** Revokes every family of `subject`, each in its own slot; families already gone leave the set. */
  async revokeSubject(subject: string): Promise<string[]> {
    const key = this.subjectKey(subject);
    const ids = await orUnavailable(() => this.client.zrange(key, '0', '-1'));
    const revoked: string[] = [];
    await Promise.all(
      ids.map(async (id) => {
        const existed = FAMILY_ID.test(id) && (await orUnavailable(() => this.client.notifyRtRevokeFamily(this.familyKey(id)))) === 1;
        if (existed) revoked.push(id);
        else await orUnavailable(() => this.client.zrem(key, id));
      }),
    );
    return ids.filter((id) => revoked.includes(id));
  }

  /** Keys expire by themselves; nothing to sweep. */
  async sweep(): Promise<void> {}

  async close(): Promise<void> {}

  private familyKey(familyId: string): string {
    return `${this.options.keyPrefix}rt:{${familyId}}:f`;
  }

  private tokenKey(familyId: string, tokenHash: string): string {
    return `${this.options.keyPrefix}rt:{${familyId}}:t:${tokenHash}`;
  }

  private subjectKey(subject: string): string {
    return `${this.options.keyPrefix}rt:s:${subject}`;
  }
}

/** The family id a token carries (its first 16 characters), or `undefined` for anything this store did not issue. */
function familyOf(token: string): string | undefined {
  const familyId = token.slice(0, FAMILY_ID_LENGTH);
  return token.length > FAMILY_ID_LENGTH && FAMILY_ID.test(familyId) ? familyId : undefined;
}
