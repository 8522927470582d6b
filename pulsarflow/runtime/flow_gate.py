"""The executor's side of flow control: ask for a lease before an attempt, give it back after.

An attempt of a limited service runs only with a lease (``flow_leases.py``). Refused, it
is published again to its executor topic, delayed until the leases say to try again
(plus a little jitter, so that the attempts held back do not all come back at once): the
same attempt, with ``deferrals`` one higher. It is not run, not dead-lettered, and not
counted as an attempt of the task (its retry policy does not see it). While attempts run,
a thread renews their leases, so only an executor that stopped (crashed, hung machine)
lets its leases run out.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace

from pulsarflow.clock import Clock
from pulsarflow.engines.outgoing import Outgoing
from pulsarflow.errors import BackendError
from pulsarflow.messages import ExecuteTask, TaskExecutorMessage
from pulsarflow.runtime.flow import FlowLimit, checked_limits
from pulsarflow.runtime.flow_leases import FlowLeases, Grant, InMemoryFlowLeases
from pulsarflow.topics import Topics

log = logging.getLogger("pulsarflow.flow")


@dataclass(frozen=True)
class Ticket:
    """A lease held by a running attempt."""

    service: str
    holder: str


def holder_of(task: ExecuteTask) -> str:
    """Who holds a lease: one attempt of one run of a task step."""
    return f"{task.task_id}@{task.generation}#{task.attempt}"


class FlowGate:
    """Leases for the services that have limits; attempts of other services pass freely."""

    def __init__(self, leases: FlowLeases, limits: Mapping[str, FlowLimit], topics: Topics, clock: Clock,
                 renew_every_ms: int | None = None) -> None:
        self.leases = leases
        self.limits = {s: limit for s, limit in limits.items() if limit.limited}
        self.topics = topics
        self.clock = clock
        self._running: dict[str, set[str]] = {s: set() for s in self.limits}
        self._lock = threading.Lock()
        self._random = random.Random()
        shortest = min((limit.lease_ms for limit in self.limits.values()), default=1000)
        self.renew_every_ms = renew_every_ms or min(shortest // 4, 250)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def admit(self, task: ExecuteTask) -> Ticket | Grant | None:
        """A Ticket to run with, a refusal (Grant) to publish as a deferral, or None: no limit applies."""
        limit = self.limits.get(task.service)
        if limit is None:
            return None
        holder = holder_of(task)
        grant = self.leases.acquire(task.service, holder, limit, task.priority)
        if not grant.granted:
            return grant
        with self._lock:
            self._running[task.service].add(holder)
        self.start()
        return Ticket(task.service, holder)

    def finish(self, ticket: Ticket) -> None:
        """Give the lease back; if the backend is down the lease runs out by itself."""
        with self._lock:
            self._running[ticket.service].discard(ticket.holder)
        try:
            self.leases.release(ticket.service, ticket.holder, self.limits[ticket.service])
        except BackendError as exc:
            log.warning("could not release the lease of %s (it runs out by itself): %s", ticket.holder, exc)

    def deferral(self, envelope: TaskExecutorMessage, task: ExecuteTask, grant: Grant) -> Outgoing:
        """The same attempt, published again to come back when the limit may let it start."""
        limit = self.limits[task.service]
        now = self.clock.now_ms()
        at = max(grant.retry_at_ms, now) + self._random.randint(0, max(1, limit.retry_ms // 2))
        again = replace(task, deferrals=task.deferrals + 1)
        message = TaskExecutorMessage(f"{envelope.message_id}~{again.deferrals}", task.task_id, now, again)
        log.debug("%s held back by the %s limit of %r until %d", task.task_id, grant.held_by, task.service, at)
        return Outgoing(self.topics.executor(task.service), task.task_id, message, at)

    def renew_now(self) -> None:
        """Renew every running attempt's lease (and let a counter backend clear what is over)."""
        for service, limit in self.limits.items():
            with self._lock:
                holders = sorted(self._running[service])
            try:
                self.leases.renew(service, holders, limit)
            except BackendError as exc:
                log.warning("could not renew the leases of service %r: %s", service, exc)

    def start(self) -> None:
        """Start the renewing thread (at the first lease, or at once for a backend that clears counters)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._renewing, name="pulsarflow-flow-leases",
                                                    daemon=True)
                    self._thread.start()

    def _renewing(self) -> None:
        while not self._stop.wait(self.renew_every_ms / 1000):
            self.renew_now()

    def close(self) -> None:
        self._stop.set()


def gate_for(flow: Mapping[str, FlowLimit] | None, leases: FlowLeases | None, topics: Topics,
             clock: Clock) -> FlowGate | None:
    """The gate of ``EmbeddedEnvironment(flow=..., flow_leases=...)``: leases in this process by default."""
    limits = checked_limits(flow)
    if not limits:
        return None
    return FlowGate(leases or InMemoryFlowLeases(clock), limits, topics, clock)
