"""Leases on a service's capacity, shared by its executors: the port and its in-memory backend.

One decision per attempt that wants to start (``acquire``), for a service and its limit:

1. leases whose time ran out are dropped (their executor died or stopped renewing), and
   so are waiting attempts that did not come back in time;
2. an attempt that holds a lease already is granted again (a duplicate delivery);
3. it may start when a slot is free (``max_concurrent``), the rate allows a start now
   (``max_starts_per_second``: starts spaced by 1/rate, GCRA with a burst of one), and
   no attempt of a *higher* priority is waiting for the capacity it would take;
4. granted: it holds a lease until ``release`` (renewed while it runs). Refused: it is
   noted as waiting (with its priority, until it comes back or ``wait_ms`` passes) and
   told when to try again.

The Redis backend (``pulsarflow/storage/flow_redis.py``) runs the same steps in one Lua script on the
server's clock; the function-state backend (``flow_counters.py``, over
``pulsarflow.pulsar.function_state.ContextCounters``) has only counters and
offers concurrency and rate without priorities among waiting attempts.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Protocol

from pulsarflow.clock import Clock
from pulsarflow.runtime.flow import FlowLimit

GRACE_MS = 2_000  # a refused attempt counts as waiting this long past its retry time (broker delivery latency)


@dataclass(frozen=True)
class Grant:
    """The answer to ``acquire``: started, or when to try again and which limit held it back."""

    granted: bool
    retry_at_ms: int = 0
    held_by: str = ""  # "concurrency" or "rate" when refused


class FlowLeases(Protocol):
    """Leases of every service, shared by all the executors that see the same backend.

    Contract: at no time do more unexpired leases exist for a service than its
    ``max_concurrent``; grants of one service are at least ``1000 / max_starts_per_second``
    ms apart; ``acquire`` for a holder that has a lease grants it again; ``release`` of a
    lease that is gone does nothing. Backends raise BackendError when unreachable.
    """

    def acquire(self, service: str, holder: str, limit: FlowLimit, priority: int) -> Grant: ...

    def renew(self, service: str, holders: list[str], limit: FlowLimit) -> None: ...

    def release(self, service: str, holder: str, limit: FlowLimit) -> None: ...


def wait_ms(limit: FlowLimit) -> int:
    """How long a refused attempt is noted as waiting: until its retry, plus the delivery's latency."""
    return 2 * limit.retry_ms + GRACE_MS


@dataclass
class _Service:
    leases: dict[str, int] = field(default_factory=dict)  # holder -> expires at
    waiting: dict[str, tuple[int, int]] = field(default_factory=dict)  # holder -> (priority, expires at)
    tat_ms: float = 0.0  # GCRA: the theoretical time of the next start


class InMemoryFlowLeases:
    """Leases in this process (the embedded runtime, tests): one lock, the given clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._services: dict[str, _Service] = {}
        self._lock = threading.Lock()

    def acquire(self, service: str, holder: str, limit: FlowLimit, priority: int) -> Grant:
        with self._lock:
            now = self.clock.now_ms()
            s = self._expired(service, now)
            if holder in s.leases:
                s.leases[holder] = now + limit.lease_ms
                return Grant(True)
            ahead = sum(1 for h, (p, _) in s.waiting.items() if p > priority and h != holder)
            free = math.inf if limit.max_concurrent is None else limit.max_concurrent - len(s.leases)
            if free - ahead < 1:
                return self._wait(s, holder, priority, limit, now, now + limit.retry_ms, "concurrency")
            if limit.interval_ms and (s.tat_ms > now or ahead):
                retry_at = math.ceil(s.tat_ms) if s.tat_ms > now else now + limit.retry_ms
                return self._wait(s, holder, priority, limit, now, retry_at, "rate")
            if limit.interval_ms:
                s.tat_ms = max(s.tat_ms, now) + limit.interval_ms
            s.leases[holder] = now + limit.lease_ms
            s.waiting.pop(holder, None)
            return Grant(True)

    def renew(self, service: str, holders: list[str], limit: FlowLimit) -> None:
        with self._lock:
            now = self.clock.now_ms()
            s = self._expired(service, now)
            for holder in holders:
                if holder in s.leases:
                    s.leases[holder] = now + limit.lease_ms

    def release(self, service: str, holder: str, limit: FlowLimit) -> None:
        with self._lock:
            self._services.get(service, _Service()).leases.pop(holder, None)

    def held(self, service: str) -> int:
        """Unexpired leases of ``service`` (for tests and benchmarks)."""
        with self._lock:
            return len(self._expired(service, self.clock.now_ms()).leases)

    def _expired(self, service: str, now: int) -> _Service:
        s = self._services.setdefault(service, _Service())
        s.leases = {h: at for h, at in s.leases.items() if at > now}
        s.waiting = {h: w for h, w in s.waiting.items() if w[1] > now}
        return s

    @staticmethod
    def _wait(s: _Service, holder: str, priority: int, limit: FlowLimit, now: int, retry_at: int,
              held_by: str) -> Grant:
        s.waiting[holder] = (priority, retry_at + wait_ms(limit))
        return Grant(False, retry_at, held_by)
