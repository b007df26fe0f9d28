"""RedisLoginThrottle: the LoginThrottle port (usecases.ports.login) as two Lua scripts, so every replica shares
one count per (client, username) pair and the check and the count of an attempt are one atomic step.

`admit` drops expired leases, forgets a record past its `exp` (time is the caller's: the key's TTL only collects
the garbage), refuses while the pair's delay runs (`next` in the future) or while its in-flight
budget is spent, else adds the attempt to the in-flight zset with a lease. `settle` removes the attempt and, on a
failure, counts it and sets the next allowed time (the delay of ThrottleRules.delay_ms, spelled again in Lua; the
contract suite holds the two to one behaviour). Keys from storage.redis.keys.login_pair_keys; times are the
caller's epoch milliseconds (time is an input), written with %.0f so Lua never prints them as 1.7e+12.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from storage.redis.keys import login_pair_keys
from usecases.ports.login import Admission, Outcome, ThrottleRules

# KEYS: record, inflight. ARGV: now_ms, ticket, free_failures, lease_ms. → {allowed 0|1, retry_after_ms}
_ADMIT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
local record = redis.call('HMGET', KEYS[1], 'f', 'next', 'exp')
local failures, next_at = 0, 0
if tonumber(record[3] or '0') > now then
  failures = tonumber(record[1] or '0')
  next_at = tonumber(record[2] or '0')
end
if now < next_at then return {0, next_at - now} end
local free = tonumber(ARGV[3])
local budget = 1
if failures < free then budget = free - failures end
if redis.call('ZCARD', KEYS[2]) >= budget then return {0, 1000} end
local lease = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], string.format('%.0f', now + lease), ARGV[2])
redis.call('PEXPIRE', KEYS[2], lease)
return {1, 0}
"""

# KEYS: record, inflight. ARGV: now_ms, ticket, outcome, free_failures, first_delay_ms, max_delay_ms, window_ms.
_SETTLE = """
redis.call('ZREM', KEYS[2], ARGV[2])
local outcome = ARGV[3]
if outcome == 'ok' then
  redis.call('DEL', KEYS[1])
elseif outcome == 'fail' then
  local now = tonumber(ARGV[1])
  if tonumber(redis.call('HGET', KEYS[1], 'exp') or '0') <= now then redis.call('DEL', KEYS[1]) end
  local failures = redis.call('HINCRBY', KEYS[1], 'f', 1)
  local free = tonumber(ARGV[4])
  local delay = 0
  if failures >= free then
    delay = math.min(tonumber(ARGV[5]) * 2 ^ math.min(failures - free, 40), tonumber(ARGV[6]))
  end
  local keep = delay + tonumber(ARGV[7])
  redis.call('HSET', KEYS[1], 'next', string.format('%.0f', now + delay), 'exp', string.format('%.0f', now + keep))
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', keep))
end
return 0
"""


class RedisLoginThrottle:
    def __init__(self, redis: aioredis.Redis, rules: ThrottleRules) -> None:
        self.rules = rules
        self._admit = redis.register_script(_ADMIT)
        self._settle = redis.register_script(_SETTLE)

    async def admit(self, client: str, username: str, now_ms: int) -> Admission:
        ticket = Admission.new_ticket()
        allowed, retry_after_ms = await self._admit(
            keys=login_pair_keys(client, username),
            args=[now_ms, ticket, self.rules.free_failures, self.rules.lease_ms])
        return Admission(True, 0, ticket) if int(allowed) else Admission(False, int(retry_after_ms))

    async def settle(self, client: str, username: str, ticket: str, outcome: Outcome, now_ms: int) -> None:
        rules = self.rules
        await self._settle(keys=login_pair_keys(client, username),
                           args=[now_ms, ticket, outcome.value, rules.free_failures, rules.first_delay_ms,
                                 rules.max_delay_ms, rules.window_ms])
