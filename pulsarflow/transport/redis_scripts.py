"""The keys and Lua scripts of the Redis queue (``transport/redis.py``).

Every change to the queue is one script, so it is atomic and costs one round trip. Keys,
under the queue's prefix:

    ready        list of message ids due now, oldest first
    delayed      sorted set of ids scored by due time (ms on the environment's clock)
    processing   list of ids the owner took and has not settled yet, in the order taken
    messages     hash id -> framed message (topic, key, payload)
    seq          counter naming the ids, zero-padded so that equal due times keep send order
    owner        the token of the process running the queue; its expiry is the owner's lease
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KEY_NAMES = ("ready", "delayed", "processing", "messages", "seq", "owner")

# Settles (id, due) pairs from ARGV[first] on: due '' means handled (forget the message),
# otherwise deliver it again at that time, but only if it is still taken (a process that
# took the queue over has handed it out again already).
_SETTLE = """
local function settle(first)
  for i = first, #ARGV, 2 do
    local taken = redis.call('LREM', KEYS[3], -1, ARGV[i])
    if ARGV[i + 1] == '' then
      redis.call('HDEL', KEYS[4], ARGV[i])
    elseif taken > 0 then
      redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
    end
  end
end
"""

# ARGV: how many messages to take (0: none), token, now ms, lease ms, number of sends, then the
# sends as (due or '', frame) pairs, then the settlements as (id, due or '') pairs.
# Returns {3} when taking none; {0, lease left ms, owner} when another process runs the queue;
# else {1, handed back, id, frame, id, frame...} with up to that many messages ("handed back":
# the messages a previous owner had taken, put back first when this process took the queue over).
STEP = _SETTLE + """
local sends_end = 5 + 2 * tonumber(ARGV[5])
settle(sends_end + 1)
for i = 6, sends_end, 2 do
  local id = string.format('%016d', redis.call('INCR', KEYS[5]))
  redis.call('HSET', KEYS[4], id, ARGV[i + 1])
  if ARGV[i] == '' then redis.call('RPUSH', KEYS[1], id) else redis.call('ZADD', KEYS[2], ARGV[i], id) end
end
local take = tonumber(ARGV[1])
if take == 0 then return {3} end
local owner = redis.call('GET', KEYS[6])
local out = {1, 0}
if owner ~= ARGV[2] then
  if owner then return {0, redis.call('PTTL', KEYS[6]), owner} end
  while redis.call('RPOPLPUSH', KEYS[3], KEYS[1]) do out[2] = out[2] + 1 end
end
redis.call('SET', KEYS[6], ARGV[2], 'PX', ARGV[4])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, 500)
if #due > 0 then
  redis.call('RPUSH', KEYS[1], unpack(due))
  redis.call('ZREM', KEYS[2], unpack(due))
end
while #out < 2 + 2 * take do
  local id = redis.call('LMOVE', KEYS[1], KEYS[3], 'LEFT', 'RIGHT')
  if not id then break end
  local frame = redis.call('HGET', KEYS[4], id)
  if frame then
    out[#out + 1] = id
    out[#out + 1] = frame
  else
    redis.call('LREM', KEYS[3], -1, id)
  end
end
return out
"""

# KEYS: owner; ARGV: token, lease ms. 1 when the lease was extended, 0 when another owns it.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: owner; ARGV: token. Lets another process take the queue at once.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class QueueScripts:
    """The scripts registered on one client, and the queue's keys."""

    client: Any
    keys: tuple[str, ...]
    step: Any
    renew: Any
    release: Any

    @classmethod
    def register(cls, client: Any, prefix: str) -> QueueScripts:
        keys = tuple(prefix + name for name in KEY_NAMES)
        return cls(client, keys, client.register_script(STEP), client.register_script(RENEW),
                   client.register_script(RELEASE))

    def key(self, name: str) -> str:
        return self.keys[KEY_NAMES.index(name)]

    def renew_lease(self, token: str, lease_ms: int) -> bool:
        return bool(self.renew(keys=[self.key("owner")], args=[token, lease_ms]))

    def release_lease(self, token: str) -> None:
        self.release(keys=[self.key("owner")], args=[token])
