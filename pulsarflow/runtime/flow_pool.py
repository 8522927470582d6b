"""Executor threads for the embedded runtime: task attempts running side by side in one process.

The embedded loop is single-threaded, so by default its executor runs one attempt at a
time. ``EmbeddedEnvironment(executor_threads=N)`` hands each task attempt to one of N
threads instead, each with its own executor (sharing the cancellations and the flow
gate), as N executor instances would run on Pulsar; the loop goes on with the engines
meanwhile. The queue is then shared between threads, so every call to it goes through
one lock (:class:`LockedQueue`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

Delivered = Any  # a message the queue handed out (pulsarflow.transport.queue.Delivered)


class LockedQueue:
    """A queue transport whose every call holds one lock (the loop and the executor threads share it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if not callable(value):
            return value

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return locked


class ExecutorThreads:
    """Runs deliveries on ``size`` threads; ``run`` is called on a thread with that thread's handler."""

    def __init__(self, size: int, make_runner: Callable[[], Callable[[Delivered], None]]) -> None:
        self.make_runner = make_runner
        self._work: queue.Queue[Delivered | None] = queue.Queue()
        self._changed = threading.Condition()
        self._in_flight = 0
        self._errors: list[BaseException] = []
        self._threads = [threading.Thread(target=self._serve, name=f"pulsarflow-executor-{i}", daemon=True)
                         for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, delivery: Delivered) -> None:
        with self._changed:
            self._in_flight += 1
        self._work.put(delivery)

    def submit_all(self, deliveries: list[Delivered]) -> None:
        for delivery in deliveries:
            self.submit(delivery)

    def busy(self) -> bool:
        with self._changed:
            return self._in_flight > 0

    def wait(self, timeout_s: float) -> None:
        """Until an attempt finishes (or ``timeout_s``)."""
        with self._changed:
            if self._in_flight:
                self._changed.wait(timeout_s)

    def raise_errors(self) -> None:
        """Re-raise, on the caller's thread, what an executor thread raised (``fail_fast``)."""
        with self._changed:
            errors, self._errors = self._errors, []
        if errors:
            raise errors[0]

    def _serve(self) -> None:
        run = self.make_runner()
        while (delivery := self._work.get()) is not None:
            try:
                run(delivery)
            except BaseException as exc:  # handed to the loop's thread, raised there
                with self._changed:
                    self._errors.append(exc)
            finally:
                with self._changed:
                    self._in_flight -= 1
                    self._changed.notify_all()

    def close(self) -> None:
        for _ in self._threads:
            self._work.put(None)
        for thread in self._threads:
            thread.join(timeout=5)


def settled(pool: ExecutorThreads | None) -> bool:
    """Wait a little for the attempts running on ``pool``, if any (True: there were some; look again)."""
    if pool is None or not pool.busy():
        return False
    pool.wait(0.05)
    return True
