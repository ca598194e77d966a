import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { orUnavailable } from './redis-unavailable-error.js';
import type { RefreshGrant, RefreshTokenStore, RotateResult } from '../../auth/refresh-token-store.js';

export interface RedisRefreshTokenStoreOptions {
  /** A `commands` connection (`redis/connect.ts`); the store does not close it. */
  readonly client: Redis;
  readonly keyPrefix: string;
  readonly idleTtlMs: number;
  readonly absoluteTtlMs: number;
  /** Families per subject; past it the oldest is revoked (as in the memory store). */
  readonly maxFamiliesPerSubject?: number;
  readonly clock?: () => number;
}

const hash = (token: string) => createHash('sha256').update(token).digest('base64url');

/*
 * Keys (P = key prefix): P rt:f:<family> a hash {subject, client, expires, used, revoked, current};
 * P rt:t:<token hash> -> family id; P rt:s:<subject> a sorted set of family ids by issue time.
 * Every key expires with its family's absolute lifetime, so retired token hashes (kept for reuse
 * detection) are bounded by one family's rotations in that lifetime. Scripts build family keys
 * from ids they read, so this needs a single Redis (or Sentinel), not Redis Cluster.
 */

/** KEYS: family, token, subject set. ARGV: family id, subject, client, now, expires, token hash, max families, prefix. */
const ISSUE = `
redis.call('HSET', KEYS[1], 'subject', ARGV[2], 'client', ARGV[3], 'expires', ARGV[5], 'used', ARGV[4], 'revoked', '0', 'current', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('PEXPIREAT', KEYS[3], ARGV[5])
local excess = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[7])
if excess > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, excess - 1)) do
    local family = ARGV[8] .. 'rt:f:' .. id
    if redis.call('EXISTS', family) == 1 then redis.call('HSET', family, 'revoked', '1') end
    redis.call('ZREM', KEYS[3], id)
  end
end
return 1
`;

/**
 * The whole rotation in one script, so two concurrent refreshes with one token cannot both win:
 * the first makes its successor current, the second then finds its token retired (reuse) and
 * revokes the family. KEYS: token. ARGV: now, idle ttl, token hash, new hash, prefix.
 */
const ROTATE = `
local id = redis.call('GET', KEYS[1])
if not id then return {'unknown'} end
local family = ARGV[5] .. 'rt:f:' .. id
local f = redis.call('HMGET', family, 'subject', 'client', 'expires', 'used', 'revoked', 'current')
if not f[1] then return {'unknown'} end
if f[5] == '1' then return {'revoked', id} end
local now = tonumber(ARGV[1])
if now >= tonumber(f[3]) or now >= tonumber(f[4]) + tonumber(ARGV[2]) then
  redis.call('HSET', family, 'revoked', '1')
  return {'expired', id}
end
if f[6] ~= ARGV[3] then
  redis.call('HSET', family, 'revoked', '1')
  return {'reused', id}
end
redis.call('HSET', family, 'used', ARGV[1], 'current', ARGV[4])
redis.call('SET', ARGV[5] .. 'rt:t:' .. ARGV[4], id, 'PXAT', f[3])
return {'ok', id, f[1], f[2]}
`;

/** KEYS: token. ARGV: prefix. Answers {family id, subject} or nothing. */
const REVOKE = `
local id = redis.call('GET', KEYS[1])
if not id then return {} end
local family = ARGV[1] .. 'rt:f:' .. id
local subject = redis.call('HGET', family, 'subject')
if not subject then return {} end
redis.call('HSET', family, 'revoked', '1')
return {id, subject}
`;

/** KEYS: family. */
const REVOKE_FAMILY = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'revoked', '1') end
return 1
`;

/** KEYS: subject set. ARGV: prefix. Answers the ids of the families it revoked. */
const REVOKE_SUBJECT = `
local revoked = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local family = ARGV[1] .. 'rt:f:' .. id
  if redis.call('EXISTS', family) == 1 then
    redis.call('HSET', family, 'revoked', '1')
    table.insert(revoked, id)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return revoked
`;

type Scripted = Redis & {
  notifyRtIssue(...args: unknown[]): Promise<number>;
  notifyRtRotate(...args: unknown[]): Promise<string[]>;
  notifyRtRevoke(...args: unknown[]): Promise<string[]>;
  notifyRtRevokeFamily(...args: unknown[]): Promise<number>;
  notifyRtRevokeSubject(...args: unknown[]): Promise<string[]>;
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
    client.defineCommand('notifyRtIssue', { numberOfKeys: 3, lua: ISSUE });
    client.defineCommand('notifyRtRotate', { numberOfKeys: 1, lua: ROTATE });
    client.defineCommand('notifyRtRevoke', { numberOfKeys: 1, lua: REVOKE });
    client.defineCommand('notifyRtRevokeFamily', { numberOfKeys: 1, lua: REVOKE_FAMILY });
    client.defineCommand('notifyRtRevokeSubject', { numberOfKeys: 1, lua: REVOKE_SUBJECT });
    this.client = client as Scripted;
  }

  async issue(subject: string, clientId: string): Promise<RefreshGrant> {
    const now = this.clock();
    const familyId = randomBytes(12).toString('base64url');
    const token = randomBytes(32).toString('base64url');
    await orUnavailable(() =>
      this.client.notifyRtIssue(
        this.key('f', familyId),
        this.key('t', hash(token)),
        this.key('s', subject),
        familyId,
        subject,
        clientId,
        now,
        now + this.options.absoluteTtlMs,
        hash(token),
        this.options.maxFamiliesPerSubject ?? 100,
        this.options.keyPrefix,
      ),
    );
    return { token, familyId, subject, clientId };
  }

  async rotate(token: string): Promise<RotateResult> {
    const next = randomBytes(32).toString('base64url');
    const digest = hash(token);
    const [status, familyId, subject, clientId] = await orUnavailable(() =>
      this.client.notifyRtRotate(this.key('t', digest), this.clock(), this.options.idleTtlMs, digest, hash(next), this.options.keyPrefix),
    );
    if (status === 'ok') return { ok: true, grant: { token: next, familyId: familyId!, subject: subject!, clientId: clientId! } };
    const reason = status as 'unknown' | 'reused' | 'revoked' | 'expired';
    return familyId === undefined ? { ok: false, reason } : { ok: false, reason, familyId };
  }

  async revoke(token: string): Promise<{ familyId: string; subject: string } | undefined> {
    const [familyId, subject] = await orUnavailable(() => this.client.notifyRtRevoke(this.key('t', hash(token)), this.options.keyPrefix));
    return familyId === undefined ? undefined : { familyId, subject: subject! };
  }

  async revokeFamily(familyId: string): Promise<void> {
    await orUnavailable(() => this.client.notifyRtRevokeFamily(this.key('f', familyId)));
  }

  async revokeSubject(subject: string): Promise<string[]> {
    return orUnavailable(() => this.client.notifyRtRevokeSubject(this.key('s', subject), this.options.keyPrefix));
  }

  /** Keys expire by themselves; nothing to sweep. */
  async sweep(): Promise<void> {}

  async close(): Promise<void> {}

  private key(kind: 'f' | 't' | 's', id: string): string {
    return `${this.options.keyPrefix}rt:${kind}:${id}`;
  }
}
