"""Threads for task attempts that have a timeout, which a hung task cannot starve.

Python cannot stop a thread. An attempt that runs past its timeout is reported as failed
(and retried by the task engine), but its thread runs on until the task returns. In a
fixed-size pool such threads would keep their slots, and once every slot is held by a
hung task, every later attempt would time out without having run. Here an attempt that
times out gives its thread up instead: the next attempt gets another thread. Threads of
attempts that finished are reused. The number of threads still running timed-out
attempts is bounded (``max_hung``); past every ``WARN_EVERY`` of them a warning says
which task hangs, and past the bound an attempt fails at once with the reason.

The attempt's ``TaskInfo`` is marked stopped when it times out, so a task that checks
``pulsarflow.task_info().cancelled`` can return early and free its thread.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pulsarflow.executor")

MAX_HUNG = 256  # threads still running attempts that timed out, at most
WARN_EVERY = 10
KEEP_IDLE = 4  # finished threads kept for the next attempts

Job = tuple[Callable[..., Any], tuple[Any, ...], "concurrent.futures.Future[Any]"]


class HeartbeatTimeoutError(Exception):
    """An attempt of a task with a ``heartbeat_timeout`` called ``pulsarflow.heartbeat()`` too late; retried."""


class TooManyHungAttemptsError(Exception):
    """No thread for an attempt: too many earlier attempts ran past their timeout and still run."""


class AttemptThreads:
    def __init__(self, max_hung: int = MAX_HUNG, keep_idle: int = KEEP_IDLE) -> None:
        self.max_hung = max_hung
        self.keep_idle = keep_idle
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Job | None]] = []
        self._abandoned: set[concurrent.futures.Future[Any]] = set()
        self._closed = False
        self.started = 0  # threads started so far (for tests and metrics)

    @property
    def hung(self) -> int:
        """Threads still running an attempt that timed out."""
        return len(self._abandoned)

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float | None, name: str = "task",
            heartbeat: Callable[[], float] | None = None) -> Any:
        """``fn(*args)`` on a thread of its own; TimeoutError after ``timeout`` seconds (the thread is given up).

        ``heartbeat`` (asked after each wait) gives the seconds left before the attempt's
        heartbeat is overdue: once it is, the thread is given up the same way and
        HeartbeatTimeoutError is raised.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._inbox(name).put((fn, args, future))
        started = time.monotonic()
        while True:
            left = None if timeout is None else timeout - (time.monotonic() - started)
            beat = heartbeat() if heartbeat is not None else None
            waits = [w for w in (left, beat) if w is not None]
            try:
                return future.result(max(0.0, min(waits)) if waits else None)
            except concurrent.futures.TimeoutError:
                expired = left is not None and timeout is not None and time.monotonic() - started >= timeout
                silent = heartbeat is not None and heartbeat() <= 0
                if not (expired or silent):
                    continue  # a heartbeat came meanwhile: wait again
                if not self._abandon(future, name):
                    return future.result()  # it finished just as the wait ended
                if expired:
                    raise TimeoutError(f"{name} ran past {timeout}s") from None
                raise HeartbeatTimeoutError(f"{name} sent no heartbeat in time") from None

    def close(self) -> None:
        """Let idle threads end; threads still running an attempt end when it returns."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for inbox in idle:
            inbox.put(None)

    def _inbox(self, name: str) -> queue.SimpleQueue[Job | None]:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if len(self._abandoned) >= self.max_hung:
                raise TooManyHungAttemptsError(
                    f"no thread for this attempt of {name}: {len(self._abandoned)} earlier attempts ran past their "
                    "timeout and still run; make tasks return when pulsarflow.task_info().cancelled is True")
            self.started += 1
        inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        threading.Thread(target=self._work, args=(inbox,), name="pulsarflow-task", daemon=True).start()
        return inbox

    def _abandon(self, future: concurrent.futures.Future[Any], name: str) -> bool:
        """Give the attempt's thread up; False if the attempt finished meanwhile."""
        with self._lock:
            if future.done():
                return False
            self._abandoned.add(future)
            hung = len(self._abandoned)
        if hung % WARN_EVERY == 0:
            log.warning("%d task attempts ran past their timeout and still run on their threads (the latest: %s); "
                        "tasks should return when pulsarflow.task_info().cancelled is True (at most %d may hang)",
                        hung, name, self.max_hung)
        return True

    def _work(self, inbox: queue.SimpleQueue[Job | None]) -> None:
        while (job := inbox.get()) is not None:
            fn, args, future = job
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # the attempt's outcome, whatever it is, goes to whoever waits
                future.set_exception(exc)
            with self._lock:
                was_abandoned = future in self._abandoned
                self._abandoned.discard(future)
                if self._closed or (was_abandoned and len(self._idle) >= self.keep_idle):
                    return
                self._idle.append(inbox)
