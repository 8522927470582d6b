"""Leases in Redis: the steps of ``flow_leases.py`` in one Lua script, on the server's clock.

Per service, under ``pulsarflow:<tenant>/<ns>/<app>:flow:<service>:``:

- ``leases``: a sorted set of holders scored by when their lease runs out;
- ``wprio`` / ``wexp``: the attempts waiting, scored by priority and by when they stop
  counting as waiting;
- ``tat``: the GCRA time of the next start (rate limit).

The script reads ``TIME`` from Redis, so executors on hosts whose clocks disagree share one
clock. Every key expires once the service is idle, so nothing is left behind.
"""

from __future__ import annotations

import logging
from typing import Any

from pulsarflow.redaction import redact
from pulsarflow.runtime.flow import FlowLimit
from pulsarflow.runtime.flow_leases import Grant, wait_ms
from pulsarflow.storage.redis import redis_client, redis_failure
from pulsarflow.topics import Topics

log = logging.getLogger("pulsarflow.flow")

# KEYS: leases, wprio, wexp, tat. ARGV: holder, priority, max_concurrent (0: none), interval_ms (0: none),
# lease_ms, retry_ms, wait_ms. Returns {1, now} when granted, {0, retry at, held by} when not.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder, prio = ARGV[1], tonumber(ARGV[2])
local limit, interval = tonumber(ARGV[3]), tonumber(ARGV[4])
local lease, retry, waitms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, g in ipairs(gone) do redis.call('ZREM', KEYS[2], g) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local keep = lease + waitms
if redis.call('ZSCORE', KEYS[1], holder) then
  redis.call('ZADD', KEYS[1], now + lease, holder)
  redis.call('PEXPIRE', KEYS[1], keep)
  return {1, now}
end
local function wait(at, why)
  redis.call('ZADD', KEYS[2], prio, holder)
  redis.call('ZADD', KEYS[3], at + waitms, holder)
  redis.call('PEXPIRE', KEYS[2], keep + at - now)
  redis.call('PEXPIRE', KEYS[3], keep + at - now)
  return {0, at, why}
end
local ahead = redis.call('ZCOUNT', KEYS[2], '(' .. prio, '+inf')
if limit > 0 and limit - redis.call('ZCARD', KEYS[1]) - ahead < 1 then
  return wait(now + retry, 'concurrency')
end
local tat = tonumber(redis.call('GET', KEYS[4]) or '0')
if interval > 0 and (tat > now or ahead > 0) then
  if tat > now then return wait(math.ceil(tat), 'rate') end
  return wait(now + retry, 'rate')
end
if interval > 0 then
  tat = math.max(tat, now) + interval
  redis.call('SET', KEYS[4], tostring(tat), 'PX', math.ceil(tat - now) + keep)
end
redis.call('ZADD', KEYS[1], now + lease, holder)
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('ZREM', KEYS[2], holder)
redis.call('ZREM', KEYS[3], holder)
return {1, now}
"""

# KEYS: leases. ARGV: lease_ms, then the holders. Only leases that still exist are renewed.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
"""


class RedisFlowLeases:
    """Leases shared by every executor that reaches this Redis (Functions, workers, embedded)."""

    def __init__(self, client: Any, topics: Topics, where: str = "redis") -> None:
        self.client = client
        self.prefix = f"pulsarflow:{topics.tenant}/{topics.namespace}/{topics.app}:flow:"
        self.where = where
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    @classmethod
    def from_url(cls, url: str, topics: Topics, timeout_s: float = 5.0) -> RedisFlowLeases:
        """Leases over a new connection pool; ``url`` like ``redis://127.0.0.1:6379/0``."""
        client = redis_client(url, timeout_s, "flow control in Redis", "the Redis URL of the flow-control leases")
        return cls(client, topics, redact(url))

    def keys(self, service: str) -> list[str]:
        base = f"{self.prefix}{service}:"
        return [base + "leases", base + "wprio", base + "wexp", base + "tat"]

    def acquire(self, service: str, holder: str, limit: FlowLimit, priority: int) -> Grant:
        args = [holder, priority, limit.max_concurrent or 0, repr(limit.interval_ms), limit.lease_ms,
                limit.retry_ms, wait_ms(limit)]
        answer = self._call("acquire", service, self._acquire, keys=self.keys(service), args=args)
        if int(answer[0]) == 1:
            return Grant(True)
        held_by = answer[2].decode() if isinstance(answer[2], bytes) else str(answer[2])
        return Grant(False, int(answer[1]), held_by)

    def renew(self, service: str, holders: list[str], limit: FlowLimit) -> None:
        if holders:
            self._call("renew", service, self._renew, keys=self.keys(service)[:1], args=[limit.lease_ms, *holders])

    def release(self, service: str, holder: str, limit: FlowLimit) -> None:
        self._call("release", service, self.client.zrem, self.keys(service)[0], holder)

    def held(self, service: str) -> int:
        """Leases of ``service`` not yet run out (tests, benchmarks)."""
        now_s, now_us = self._call("time", service, self.client.time)
        key = self.keys(service)[0]
        return int(self._call("count", service, self.client.zcount, key, f"({now_s * 1000 + now_us // 1000}",
                              "+inf"))

    def _call(self, what: str, service: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise redis_failure(f"{what} of the flow-control leases of service {service!r}", self.where, exc,
                                "; the attempt is not run now and its message comes back later") from exc
