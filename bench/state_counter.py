"""Counts a Pulsar Function instance's state calls, for ``bench.profile_pulsar``.

Listed among a benchmark app's modules, it is imported by every instance of its functions
(``load_registry``). Inside an instance (where the Python runtime's ``contextimpl`` module
is loaded) it wraps ``ContextImpl.put_state`` and ``get_state`` with counters of calls and
characters, and a thread copies the totals every half second to the Redis hash
``pulsarflow-perf:<pid>`` (``PULSARFLOW_PERF_REDIS``, DB 10 by default), so the hot path
pays two additions per call and no I/O. Imported anywhere else it does nothing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, cast

REDIS_URL = os.environ.get("PULSARFLOW_PERF_REDIS", "redis://127.0.0.1:6379/10")
KEY = "pulsarflow-perf:{pid}"
EXPIRE_S = 3600

counts = {"puts": 0, "put_chars": 0, "gets": 0, "get_bytes": 0}


def _install(context_class: Any) -> None:
    if getattr(context_class, "_pulsarflow_counted", False):
        return
    put, get = context_class.put_state, context_class.get_state

    def put_state(self: Any, key: str, value: str) -> Any:
        counts["puts"] += 1
        counts["put_chars"] += len(key) + len(value)
        return put(self, key, value)

    def get_state(self: Any, key: str) -> Any:
        value = get(self, key)
        counts["gets"] += 1
        counts["get_bytes"] += len(value) if value else 0
        return value

    context_class.put_state, context_class.get_state = put_state, get_state
    context_class._pulsarflow_counted = True
    threading.Thread(target=_report, name="pulsarflow-perf-counter", daemon=True).start()


def _report() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    key = KEY.format(pid=os.getpid())
    while True:
        try:
            client.hset(key, mapping=cast(Any, dict(counts)))
            client.expire(key, EXPIRE_S)
        except Exception:  # Redis away: the counts are reported once it answers
            pass
        time.sleep(0.5)


def read(client: Any, pid: int) -> dict[str, int]:
    """The totals one instance last reported (zeros before its first report)."""
    raw = client.hgetall(KEY.format(pid=pid))
    return {name: int(raw.get(name.encode(), 0)) for name in counts}


if "contextimpl" in sys.modules:  # inside a Python Function instance
    _install(sys.modules["contextimpl"].ContextImpl)
