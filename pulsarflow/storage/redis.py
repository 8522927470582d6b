"""Redis behind the StateStore port, with compare-and-set through a Lua script.

Each key is a hash ``{v: version, d: value bytes}`` under a prefix naming the application
(see :func:`key_prefix`), so several applications and engines share one Redis safely.
A write runs as one Lua script: it compares the stored version with the expected one
and, only if they match, stores the value with the next version and sets or clears the
key's expiry, all atomically. Finished values get ``PEXPIRE retention_ms``; any other
write clears a previous expiry (``PERSIST``).

A key's parts (``PartStore``) are fields ``p:<name>`` of the same hash, written and dropped
by the same script as the value: one key per state still, so the parts expire and are
deleted with it, and a refused write touches none of them.

Connection problems are retried briefly (a restart of Redis is ridden through), then
raised as BackendError; the message being handled is not acknowledged, so it comes back
once Redis does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pulsarflow.errors import BackendError, DefinitionError, StateConflictError
from pulsarflow.redaction import redact
from pulsarflow.storage import Parts, PartWrite, Versioned, check_retention
from pulsarflow.topics import Topics

log = logging.getLogger("pulsarflow.storage.redis")

# KEYS[1] = key; ARGV = expected version, value, expiry in ms ('' = keep for good), then
# optionally the number n of parts to write, n (name, bytes) pairs and the names of parts to drop.
# Returns {1, new version} or {0, current version} when the expected version is stale.
_PUT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v')) or 0
if current ~= tonumber(ARGV[1]) then return {0, current} end
local n = tonumber(ARGV[4]) or 0
for i = 0, n - 1 do redis.call('HSET', KEYS[1], 'p:' .. ARGV[5 + 2 * i], ARGV[6 + 2 * i]) end
for i = 5 + 2 * n, #ARGV do redis.call('HDEL', KEYS[1], 'p:' .. ARGV[i]) end
redis.call('HSET', KEYS[1], 'v', current + 1, 'd', ARGV[2])
if ARGV[3] == '' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, current + 1}
"""


def key_prefix(topics: Topics, engine: str = "workflow") -> str:
    """The prefix of every key one engine of one application keeps in Redis."""
    return f"pulsarflow:{topics.tenant}/{topics.namespace}/{topics.app}:{engine}:"


class RedisStateStore:
    supports_cas = True

    def __init__(self, client: Any, prefix: str = "pulsarflow:", retention_ms: int | None = None,
                 where: str = "redis") -> None:
        self.client = client
        self.prefix = prefix
        self.retention_ms = check_retention(retention_ms)
        self.where = where
        self._put = client.register_script(_PUT)

    @classmethod
    def from_url(cls, url: str, prefix: str = "pulsarflow:", retention_ms: int | None = None,
                 timeout_s: float = 5.0) -> RedisStateStore:
        """A store over a new connection pool; ``url`` like ``redis://127.0.0.1:6379/0``."""
        client = redis_client(url, timeout_s, "the Redis state backend", "redis_url")
        return cls(client, prefix, retention_ms, where=redact(url))

    def get(self, key: str) -> Versioned | None:
        version, value = self._call("read", key, self.client.hmget, self.prefix + key, "v", "d")
        if version is None or value is None:
            return None
        return Versioned(bytes(value), int(version))

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int:
        return self.put_parts(key, value, expected_version, Parts(), finished=finished)

    def put_parts(self, key: str, value: bytes, expected_version: int, parts: Parts,
                  finished: bool = False) -> int:
        ok, version = self._call("write", key, self._put, keys=[self.prefix + key],
                                 args=self._args(value, expected_version, finished, parts))
        if not ok:
            raise StateConflictError(
                f"state {key!r} is at version {version}, the write expected {expected_version}")
        return int(version)

    def get_many(self, keys: list[str]) -> dict[str, Versioned]:
        """Every key's value in one round trip (absent keys are left out)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(self.prefix + key, "v", "d")
        rows = self._call("read", f"{len(keys)} keys", pipe.execute)
        return {key: Versioned(bytes(value), int(version))
                for key, (version, value) in zip(keys, rows, strict=True) if version is not None and value is not None}

    def put_many(self, writes: list[tuple[str, bytes, int, bool]]) -> list[str]:
        """Versioned writes of (key, value, expected version, finished) in one round trip.

        Each write is atomic on its own key, as ``put``; returns the keys whose expected
        version was stale (those were left unchanged).
        """
        return self.put_parts_many([(key, value, expected, finished, Parts())
                                    for key, value, expected, finished in writes])

    def put_parts_many(self, writes: list[PartWrite]) -> list[str]:
        """``put_many`` with each key's parts, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for key, value, expected, finished, parts in writes:
            self._put(keys=[self.prefix + key], args=self._args(value, expected, finished, parts), client=pipe)
        results = self._call("write", f"{len(writes)} keys", pipe.execute)
        return [key for (key, *_), (ok, _) in zip(writes, results, strict=True) if not ok]

    def get_parts(self, wanted: Mapping[str, Sequence[str]]) -> dict[str, dict[str, bytes]]:
        """The named parts of every key, in one round trip (missing ones left out)."""
        asked = [(key, list(names)) for key, names in wanted.items() if names]
        found: dict[str, dict[str, bytes]] = {key: {} for key in wanted}
        if not asked:
            return found
        pipe = self.client.pipeline(transaction=False)
        for key, names in asked:
            pipe.hmget(self.prefix + key, [f"p:{name}" for name in names])
        rows = self._call("read", f"parts of {len(asked)} keys", pipe.execute)
        for (key, names), values in zip(asked, rows, strict=True):
            found[key] = {name: bytes(value) for name, value in zip(names, values, strict=True) if value is not None}
        return found

    def _args(self, value: bytes, expected: int, finished: bool, parts: Parts) -> list[Any]:
        expiry = self.retention_ms if finished and self.retention_ms is not None else ""
        args: list[Any] = [expected, bytes(value), expiry]
        if parts.write or parts.drop:
            args.append(len(parts.write))
            for name, data in parts.write:
                args.extend((name, bytes(data)))
            args.extend(parts.drop)
        return args

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete, self.prefix + key)

    def close(self) -> None:
        self.client.close()

    def _call(self, what: str, key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise redis_failure(f"{what} of state {key!r}", self.where, exc,
                                f". {_advice(exc)} The engine leaves its message unacknowledged, so it is "
                                "handled again later.") from exc


def _advice(exc: Exception) -> str:
    """What to fix, from the kind of failure (credentials, certificate, reachability)."""
    import redis

    text = str(exc)
    if isinstance(exc, redis.AuthenticationError) or any(
            word in text for word in ("WRONGPASS", "NOAUTH", "invalid password", "invalid username")):
        return ("Redis refused the credentials: fix the password (and the ACL user, redis://user:password@host) "
                "in redis_url, percent-encoding any @ : / in them.")
    if "certificate verify failed" in text or "SSL" in text:
        return ("The TLS connection failed: for rediss:// give the CA that signed the server's certificate "
                "(rediss://host:6380/0?ssl_ca_certs=/path/ca.pem).")
    return "Is redis-server running and reachable (deploy/redis.sh status)?"


def redis_failure(what: str, where: str, exc: Exception, then: str) -> BackendError:
    """A Redis error as the BackendError the runtime retries (logged): what failed, where, and what happens now."""
    message = f"Redis {what} at {where} failed: {type(exc).__name__}: {redact(str(exc)).rstrip('.')}{then}"
    log.error(message)
    return BackendError(message)


def redis_client(url: str, timeout_s: float, who: str, setting: str) -> Any:
    """A client on a new connection pool that retries a dropped connection briefly; ``who`` and
    ``setting`` name the user of the URL in the errors (redis-py missing, a URL that is none)."""
    try:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise DefinitionError(f"{who} needs redis-py: pip install 'pulsarflow[redis]'") from exc
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise DefinitionError(f"{setting} must look like redis://host:6379/0 (or rediss://, unix://), "
                              f"got {redact(str(url))!r}")
    try:
        return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                    retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 4),
                                    retry_on_error=[redis.ConnectionError, redis.TimeoutError])
    except ValueError as exc:
        raise DefinitionError(f"invalid {setting} {redact(url)!r}: {exc}") from exc

