"""Leases on atomic counters: flow control in Pulsar function state, which has no compare-and-set.

Function state offers counters that every instance of one function shares and that
change atomically (``incr_counter``), and reads (``get_counter``). An attempt claims
capacity by *adding first, then reading*: it adds 1 and reads the sum; above the limit, it
takes its 1 back and waits. Two attempts racing may both see too much and both wait, but
never both start past the limit: every attempt that holds capacity added its 1 before
anyone read.

**Concurrency, with leases that run out.** Time is cut into epochs of ``lease_ms``; each
epoch has a counter. A running attempt is counted in the counter of the current epoch
and of the next one: it adds itself to both when it starts, and while it runs its
executor adds it to each following epoch before that epoch begins (renewal, every
quarter epoch). A start checks the current epoch's counter only, which holds every
attempt alive now. An executor that dies stops renewing, so its attempts drop out when
the epoch after next begins: a slot is leaked for at most two epochs, never for good.
A finished attempt takes itself back from the epochs it was counted in that have not
ended.

**Rate.** Each second has a counter; a start adds 1 to its second's and reads it: above
``max_starts_per_second``, it takes it back and waits for the next second. This is a
fixed window: at most N starts within each second, up to 2N within a second that
straddles two (the Redis backend spaces starts evenly instead).

**Bounded keys.** Counters are reused in a ring (``RING`` epochs, ``RING`` seconds): one
executor instance, the clearer (instance 0 of the function), sets the counters of epochs
that are long over back to 0 before they come round again (it reads the value and adds
its opposite: no one else writes an epoch that old). While the clearer is down, reused
counters keep what they held, so starts are refused more than needed (never allowed
more) until it is back; the Functions runtime restarts it.

No priorities among waiting attempts here: a counter cannot tell who waits.
"""

from __future__ import annotations

import threading
from typing import Protocol

from pulsarflow.clock import Clock
from pulsarflow.runtime.flow import FlowLimit
from pulsarflow.runtime.flow_leases import Grant

RING = 8  # counters per kind and service, reused in turn


class Counters(Protocol):
    """Atomic counters shared by every executor of a service (a function's state)."""

    def incr(self, key: str, amount: int) -> None: ...

    def get(self, key: str) -> int: ...


class CounterFlowLeases:
    """Concurrency and rate limits on shared counters (see the module docstring)."""

    def __init__(self, counters: Counters, clock: Clock, clearer: bool = False) -> None:
        self.counters = counters
        self.clock = clock
        self.clearer = clearer  # this instance resets the counters of epochs long over
        self._epochs: dict[tuple[str, str], set[int]] = {}  # (service, holder) -> epochs counted in
        self._lock = threading.Lock()

    def acquire(self, service: str, holder: str, limit: FlowLimit, priority: int) -> Grant:
        now = self.clock.now_ms()
        with self._lock:
            if (service, holder) in self._epochs:
                return Grant(True)
        epoch = now // limit.lease_ms
        if limit.max_concurrent is not None:
            self._add(service, "slots", (epoch, epoch + 1), 1)
            if self.counters.get(_key(service, "slots", epoch)) > limit.max_concurrent:
                self._add(service, "slots", (epoch, epoch + 1), -1)
                return Grant(False, now + limit.retry_ms, "concurrency")
        if limit.max_starts_per_second is not None:
            second = now // 1000
            self.counters.incr(_key(service, "starts", second), 1)
            if self.counters.get(_key(service, "starts", second)) > limit.max_starts_per_second:
                self.counters.incr(_key(service, "starts", second), -1)
                if limit.max_concurrent is not None:
                    self._add(service, "slots", (epoch, epoch + 1), -1)
                return Grant(False, (second + 1) * 1000, "rate")
        if limit.max_concurrent is not None:
            with self._lock:
                self._epochs[(service, holder)] = {epoch, epoch + 1}
        return Grant(True)

    def renew(self, service: str, holders: list[str], limit: FlowLimit) -> None:
        """Count each running attempt in the next epoch too, before it begins; clear old counters."""
        epoch = self.clock.now_ms() // limit.lease_ms
        for holder in holders:
            with self._lock:
                epochs = self._epochs.get((service, holder))
                missing = epochs is not None and epoch + 1 not in epochs
                if epochs is not None:
                    epochs.difference_update({e for e in epochs if e < epoch})
                    epochs.add(epoch + 1)
            if missing:
                self.counters.incr(_key(service, "slots", epoch + 1), 1)
        if self.clearer:
            self.clear(service, limit)

    def release(self, service: str, holder: str, limit: FlowLimit) -> None:
        with self._lock:
            epochs = self._epochs.pop((service, holder), set())
        epoch = self.clock.now_ms() // limit.lease_ms
        self._add(service, "slots", tuple(e for e in sorted(epochs) if e >= epoch), -1)

    def clear(self, service: str, limit: FlowLimit) -> None:
        """Reset the counters of epochs (and seconds) that are over, before their turn in the ring comes again."""
        now = self.clock.now_ms()
        for kind, current, wanted in (("slots", now // limit.lease_ms, limit.max_concurrent),
                                      ("starts", now // 1000, limit.max_starts_per_second)):
            if wanted is None:
                continue
            for ahead in range(3, RING - 1):  # neither the last two, nor the current, nor the next two
                key = _key(service, kind, current + ahead)
                left = self.counters.get(key)
                if left:
                    self.counters.incr(key, -left)

    def _add(self, service: str, kind: str, epochs: tuple[int, ...], amount: int) -> None:
        for epoch in epochs:
            self.counters.incr(_key(service, kind, epoch), amount)


def _key(service: str, kind: str, epoch: int) -> str:
    return f"flow:{service}:{kind}:{epoch % RING}"
