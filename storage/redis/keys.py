"""Every Redis key and channel name the system uses, and the Lua fragments that spell the same names: the one
home of a name (STYLE.md habit 14; docs/PROJECTIONS.md §1 has the table of keys, writers, readers and TTLs).

Python callers use the builders; Lua scripts are assembled from `LUA_KEYS` (local functions built from the
same prefix constants) and `LUA_APPEND_RECENT`, so a prefix is spelled once. Every per-driver name derives
from the driver id: nothing needs KEYS or SCAN. `{id}` in the docs is a placeholder, not a Redis Cluster hash
tag; the scripts derive keys from ids, so they target one Redis server. tests/unit/test_redis_keys.py fails if a
prefix literal appears in any other module.
"""

from __future__ import annotations

# -- names ----------------------------------------------------------------------------------------

RECENT_PREFIX = "ws:recent:"  # zset per driver: the newest messages, for WebSocket resume
DRIVER_CHANNEL_PREFIX = "ws:driver:"  # channel per driver: its live messages
FLEET_CHANNEL = "ws:fleet"  # channel: every driver's messages, in fleet_batch chunks
INVALIDATE_CHANNEL = "cache:invalidate"  # channel: drivers whose API-visible data changed (L1 drops)
GENERATION_PREFIX = "cache:gen:"  # counter per driver: the API's L2 generation
L2_PREFIX = "cache:v1"  # the API's L2 entries: cache:v1:{id}:{gen}:{name}
LOGIN_PAIR_PREFIX = "login:pair:"  # per (client, username): failures and attempts in flight, with TTLs
PRIVACY_CHANNEL = "privacy:changed"  # channel: a driver's new privacy state (live feeds withhold positions at once)
DEVICE_SCOPE_PREFIX = "device:"  # the API cache's scope of one device's credential (in place of a driver id)
ROLLOUT_PREFIX = "rollout:"  # per target (api, model): the traffic split of a staged rollout (domain/rollout.py)

PREFIXES = (RECENT_PREFIX, DRIVER_CHANNEL_PREFIX, FLEET_CHANNEL, INVALIDATE_CHANNEL, GENERATION_PREFIX, L2_PREFIX,
            LOGIN_PAIR_PREFIX, DEVICE_SCOPE_PREFIX, ROLLOUT_PREFIX, PRIVACY_CHANNEL)  # fmt: skip


def rollout_key(target: str) -> str:
    """The traffic split of `target`'s rollout (no TTL: `autoins rollout` deletes it when it ends)."""
    return f"{ROLLOUT_PREFIX}{target}"


def recent_key(driver_id: str) -> str:
    return f"{RECENT_PREFIX}{driver_id}"


def driver_channel(driver_id: str) -> str:
    return f"{DRIVER_CHANNEL_PREFIX}{driver_id}"


def generation_key(driver_id: str) -> str:
    """The counter writers INCR after changing the driver's data (no TTL: one small key per driver)."""
    return f"{GENERATION_PREFIX}{driver_id}"


def l2_key(driver_id: str, generation: int | str, name: str) -> str:
    """One cached API response of the driver under its generation `generation`; `name` names the resource."""
    return f"{L2_PREFIX}:{driver_id}:{generation}:{name}"


def driver_keys(driver_id: str) -> tuple[str, str]:
    """The keys the projections write for a driver (the recent zset and the generation), for tests and admin
    tools that delete them by name. L2 entries are not listed: they are versioned and expire by TTL."""
    return recent_key(driver_id), generation_key(driver_id)


def device_scope(device_id: object) -> str:
    """The response cache's scope of one device (docs/SECURITY.md §6): `device:{uuid}` stands where a driver id does
    (`cache:gen:device:{uuid}`, its L2 entries, `drivers_changed` messages). A driver id cannot contain ':', so
    the two never collide; revoking or rotating invalidates this scope like an admin write invalidates a driver."""
    return f"{DEVICE_SCOPE_PREFIX}{device_id}"


def login_pair_keys(client: str, username: str) -> tuple[str, str]:
    """The login throttle's keys of one (client address, username) pair, username case-insensitive: the record
    (hash: failures `f`, earliest next attempt `next` in epoch ms) and the attempts in flight (zset: ticket →
    lease end). Nothing is keyed by username alone: a stranger's failures cannot hold the victim's address."""
    pair = f"{LOGIN_PAIR_PREFIX}{client}:{username.lower()}"
    return pair, f"{pair}:inflight"


# -- Lua ------------------------------------------------------------------------------------------


def _lua_string(text: str) -> str:
    if any(c in text for c in "'\\\n"):
        raise ValueError(f"not a plain Lua string literal: {text!r}")
    return f"'{text}'"


# The Lua twins of the builders above, from the same constants. Prepend to a script that names keys.
LUA_KEYS = f"""
local function recent_key(id) return {_lua_string(RECENT_PREFIX)} .. id end
local function driver_channel(id) return {_lua_string(DRIVER_CHANNEL_PREFIX)} .. id end
local function generation_key(id) return {_lua_string(GENERATION_PREFIX)} .. id end
local function l2_key(id, gen, name) return {_lua_string(L2_PREFIX + ":")} .. id .. ':' .. gen .. ':' .. name end
"""

# Shared by the batch projection and the score publisher (after LUA_KEYS): a driver's messages are the
# pairs a[first], a[first+1] … a[last-1], a[last] of (seq, message JSON). ZADD them into the recent zset
# (score = seq; ≤ 200 pairs per ZADD, well inside Lua's unpack limit), keep the newest `keep`, renew the
# TTL, then PUBLISH each message on the driver's channel in the given order. No pairs: nothing happens.
LUA_APPEND_RECENT = """
local function append_recent(id, a, first, last, keep, ttl)
  if last <= first then return end
  local recent = recent_key(id)
  local args = {}
  for j = first, last, 2 do
    args[#args + 1] = a[j]
    args[#args + 1] = a[j + 1]
    if #args >= 400 then
      redis.call('ZADD', recent, unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', recent, unpack(args)) end
  redis.call('ZREMRANGEBYRANK', recent, 0, -(keep + 1))
  redis.call('EXPIRE', recent, ttl)
  local channel = driver_channel(id)
  for j = first + 1, last, 2 do redis.call('PUBLISH', channel, a[j]) end
end
"""
