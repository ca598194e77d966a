/*
 * The event log's Lua scripts. Each touches only the keys it is given (all in the bus's hash slot,
 * `bus-keys.ts`), so they run unchanged on a single Redis and on Redis Cluster.
 */

/** Lua helper: compares two `<ms>-<seq>` ids (-1, 0, 1). */
const COMPARE = `
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function compare(a, b)
  local ams, aseq = parse(a)
  local bms, bseq = parse(b)
  if ams ~= bms then return ams < bms and -1 or 1 end
  if aseq ~= bseq then return aseq < bseq and -1 or 1 end
  return 0
end
`;

/**
 * One publish, atomically: the idempotency check, a new id, the event appended to each of its
 * topics' histories (each trimmed to HISTORY_SIZE events and HISTORY_TTL, recording the newest id
 * trimmed) and once to each partition log it touches (the blocked reads of every instance that
 * follows the partition wake up on the XADD), the idempotency key.
 *
 * The id is `<ms>-<seq>` from Redis's clock (`TIME`), never below the last id issued: strictly
 * increasing over all topics, whatever the instances' clocks say.
 *
 *   KEYS: meta, topics, trimmed, topic streams (nt), partition logs (np), [idempotency key]
 *   ARGV: nt, np, history size, log max length, cutoff id (older is past the TTL), type, data,
 *         topics (space-separated), fingerprint, key ttl ms, topic names (nt), partition numbers (np)
 * Answers {0, remembered} for a key seen before, {1, id, topic count} for a new event.
 */
export const PUBLISH = `
local nt, np = tonumber(ARGV[1]), tonumber(ARGV[2])
local idem = KEYS[3 + nt + np + 1]
if idem then
  local seen = redis.call('GET', idem)
  if seen then return {0, seen} end
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local last = redis.call('HGET', KEYS[1], 'last')
local ms, seq = now, 0
if last then
  local lms, lseq = string.match(last, '^(%d+)-(%d+)$')
  lms, lseq = tonumber(lms), tonumber(lseq)
  if lms >= now then ms, seq = lms, lseq + 1 end
end
local id = string.format('%.0f-%.0f', ms, seq)
if not last then redis.call('HSET', KEYS[1], 'start', id) end
local hsize, cutoff = tonumber(ARGV[3]), ARGV[5]
local held = 0
for i = 1, nt do
  local key, topic = KEYS[3 + i], ARGV[10 + i]
  local dropped = nil
  if hsize == 0 then
    dropped = id
  else
    redis.call('XADD', key, id, 't', ARGV[8], 'y', ARGV[6], 'd', ARGV[7])
    held = held + 1
    local excess = redis.call('XLEN', key) - hsize
    if excess > 0 then
      local gone = redis.call('XRANGE', key, '-', '+', 'COUNT', excess)
      dropped = gone[#gone][1]
      held = held - redis.call('XTRIM', key, 'MAXLEN', '=', hsize)
    end
    local old = redis.call('XREVRANGE', key, '(' .. cutoff, '-', 'COUNT', 1)
    if old[1] then
      dropped = old[1][1]
      held = held - redis.call('XTRIM', key, 'MINID', '=', cutoff)
    end
  end
  if dropped then redis.call('HSET', KEYS[3], topic, dropped) end
  redis.call('ZADD', KEYS[2], ms * 1000 + math.min(seq, 999), topic)
end
local lmax = ARGV[4]
for j = 1, np do
  local key, field = KEYS[3 + nt + j], 'p' .. ARGV[10 + nt + j]
  local prev = redis.call('HGET', KEYS[1], field) or '0-0'
  redis.call('XADD', key, 'MAXLEN', '=', lmax, id, 't', ARGV[8], 'y', ARGV[6], 'd', ARGV[7], 'v', prev)
  redis.call('XTRIM', key, 'MINID', '~', cutoff)
  redis.call('HSET', KEYS[1], field, id)
end
redis.call('HSET', KEYS[1], 'last', id)
if held ~= 0 then redis.call('HINCRBY', KEYS[1], 'held', held) end
if idem then
  redis.call('SET', idem, ARGV[9] .. '\\n' .. id, 'PX', ARGV[10])
end
return {1, id, redis.call('ZCARD', KEYS[2])}
`;

/**
 * Forgets whole topics past HISTORY_MAX_TOPICS, least recently published first (the memory bus's
 * rule): their history goes, and the newest id they held becomes the global `evicted` watermark,
 * so any replay from before it answers `reset` (the topics' names are gone with them).
 *   KEYS: meta, topics, trimmed, topic streams. ARGV: max topics, topic names (one per stream key).
 */
export const EVICT = `
${COMPARE}
local max = tonumber(ARGV[1])
local evicted = redis.call('HGET', KEYS[1], 'evicted') or '0-0'
local held = 0
for i = 4, #KEYS do
  if redis.call('ZCARD', KEYS[2]) <= max then break end
  local topic = ARGV[i - 2]
  if redis.call('ZSCORE', KEYS[2], topic) then
    local newest = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
    local through = (newest[1] and newest[1][1]) or redis.call('HGET', KEYS[3], topic)
    if through and compare(through, evicted) > 0 then evicted = through end
    held = held - redis.call('XLEN', KEYS[i])
    redis.call('DEL', KEYS[i])
    redis.call('HDEL', KEYS[3], topic)
    redis.call('ZREM', KEYS[2], topic)
  end
end
redis.call('HSET', KEYS[1], 'evicted', evicted)
if held ~= 0 then redis.call('HINCRBY', KEYS[1], 'held', held) end
return 1
`;

/**
 * Drops the history of topics whose newest event is past HISTORY_TTL, keeping each one's
 * watermark (a few bytes, bounded by HISTORY_MAX_TOPICS) so a replay across it answers `reset`.
 *   KEYS: meta, trimmed, topic streams. ARGV: cutoff id, topic names (one per stream key).
 */
export const EXPIRE = `
${COMPARE}
local held = 0
for i = 3, #KEYS do
  local newest = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
  if newest[1] and compare(newest[1][1], ARGV[1]) < 0 then
    redis.call('HSET', KEYS[2], ARGV[i - 1], newest[1][1])
    held = held - redis.call('XLEN', KEYS[i])
    redis.call('DEL', KEYS[i])
  end
end
if held ~= 0 then redis.call('HINCRBY', KEYS[1], 'held', held) end
return 1
`;
