"""Which tasks have been cancelled, as an executor knows it (``pulsarflow.pulsar.cancellations`` hears of it on Pulsar).

The workflow engine broadcasts a ``CancelTask`` notice on a non-persistent topic that
every executor reads with its own exclusive subscription, so the one running the task
hears of it while the task runs (``pulsarflow.task_info().cancelled``). A notice that
no executor hears costs nothing: the workflow has already recorded the step as
cancelled and ignores its result. The embedded runtime delivers the notice in its loop,
so there a task hears of it only between attempts (a pending retry is not run).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

log = logging.getLogger("pulsarflow.executor")


def cancellation_key(task_id: str, generation: int) -> str:
    """Task ids repeat in a later run of the workflow (continue-as-new, retry): the run is part of the key."""
    return f"{task_id}@{generation}"


class Cancellations:
    """A bounded, thread-safe set of cancelled task keys (the oldest are forgotten first)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, task_id: str) -> None:
        with self._lock:
            self._ids[task_id] = None
            while len(self._ids) > self._limit:
                self._ids.popitem(last=False)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids
