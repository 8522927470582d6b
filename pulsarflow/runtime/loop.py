"""The loop of every batching deployment: take what has arrived, handle it, settle each message.

A batching Pulsar Function (``functions._Batcher``) and a worker process
(``engine_worker.serve``) differ only in where messages come from and how they are
acknowledged: that is their ``Inbox``. Everything else is here, once:

- a batch is what is due for another attempt plus what has arrived, up to ``size``;
- each message is acknowledged once handled or dead-lettered;
- a message that met an outage is held, unacknowledged, and tried again after a short,
  growing delay (``policy.Redeliveries``), instead of the broker's fixed redelivery delay
  (60 s in the Functions runtime); after ``policy.HELD_ATTEMPTS`` it is given back to the
  broker (negatively acknowledged). It is never dead-lettered;
- while ``size`` messages are held, no new ones are taken: an outage slows the intake
  down instead of filling memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from pulsarflow.errors import PartialBatchError
from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.runtime.policy import Redeliveries

log = logging.getLogger("pulsarflow.runtime")

M = TypeVar("M")
POLL_S = 0.2  # how long one wait for a first message lasts (then ``stop`` is checked again)


class Inbox(Protocol[M]):
    """Where a loop's messages come from and go back to."""

    def take(self, room: int, wait_s: float) -> list[M]:
        """Up to ``room`` messages: wait at most ``wait_s`` for the first, then only what is there."""
        ...

    def content(self, message: M) -> tuple[str, bytes]:
        """The topic and payload of ``message``."""
        ...

    def ack(self, message: M) -> None: ...

    def give_back(self, message: M) -> None:
        """Hand ``message`` back to the broker for a later delivery (a negative acknowledgement)."""
        ...


class BatchLoop(Generic[M]):
    def __init__(self, batch: BatchHandler, inbox: Inbox[M], size: int,
                 redeliveries: Redeliveries[M] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.batch = batch
        self.inbox = inbox
        self.size = size
        self.held: Redeliveries[M] = redeliveries if redeliveries is not None else Redeliveries()
        self.sleep = sleep

    def run(self, stop: threading.Event | None = None) -> None:
        while stop is None or not stop.is_set():
            self.once()

    def once(self) -> int:
        """One round: take, handle, settle; returns how many messages it handled."""
        items = self.held.due()
        if len(self.held) < self.size and len(items) < self.size:
            items += [(m, 0) for m in self.inbox.take(self.size - len(items), self._wait_s(bool(items)))]
        elif not items:
            self.sleep(min(POLL_S, self.held.wait_s() or POLL_S))  # full of held messages: wait for one to be due
        if items:
            self._settle(items)
        return len(items)

    def _wait_s(self, have_some: bool) -> float:
        """How long to wait for a first new message: not at all with messages in hand, else until one is due."""
        if have_some:
            return 0.0
        due_in = self.held.wait_s()
        return POLL_S if due_in is None else min(POLL_S, due_in)

    def _settle(self, items: list[tuple[M, int]]) -> None:
        try:
            self.batch.handle_batch([self.inbox.content(m) for m, _ in items])
            pending: set[int] = set()
        except PartialBatchError as exc:
            pending = set(exc.pending)
            log.warning("%s; trying them again in %.1f s or more", exc, self.held.backoff.initial_s)
        except Exception:  # not meant to happen (the batch isolates failures): deliver them all again
            log.exception("a batch of %d messages failed; they will be tried again", len(items))
            pending = set(range(len(items)))
        for n, (message, attempts) in enumerate(items):
            try:
                if n not in pending:
                    self.inbox.ack(message)
                elif not self.held.hold(message, attempts + 1):
                    log.error("a message failed %d times on a backend; giving it back to the broker", attempts + 1)
                    self.inbox.give_back(message)
            except Exception:  # never let the loop die: its inbox would fill up and block the intake
                log.exception("cannot settle a message of %s; it will be delivered again",
                              self.inbox.content(message)[0])
