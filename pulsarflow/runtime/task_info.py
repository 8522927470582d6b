"""What a running task can know about itself: ``pulsarflow.task_info()`` and ``pulsarflow.heartbeat()``.

The executor sets the current attempt (a context variable, so threads and async tasks each
see their own) around the user's function; outside a task both calls raise NotInTaskError.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pulsarflow.completion import CompletionToken
from pulsarflow.errors import NotInTaskError, SerializationError
from pulsarflow.runtime.cancellations import Cancellations, cancellation_key


@dataclass(frozen=True)
class TaskInfo:
    """What a running task can know about itself (``pulsarflow.task_info()``)."""

    workflow_id: str
    task_id: str
    task_name: str
    attempt: int
    generation: int = 0
    cancellations: Cancellations = field(default_factory=Cancellations, repr=False, compare=False)
    position: int = -1
    heartbeat_details: Any = None  # what the previous attempt last passed to pulsarflow.heartbeat()
    _beats: list[float] = field(default_factory=lambda: [time.monotonic()], repr=False, compare=False)
    # How details are encoded for the next attempt (the executor's converter): checked at the call.
    encode: Callable[[list[Any]], bytes] | None = field(default=None, repr=False, compare=False)
    _reported: list[Any] = field(default_factory=list, repr=False, compare=False)  # [details, bytes] once heartbeated
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def cancelled(self) -> bool:
        """True once the workflow cancelled this task, or this attempt ran past its timeout:
        stop early; the result will be ignored."""
        return self._stopped.is_set() or cancellation_key(self.task_id, self.generation) in self.cancellations

    @property
    def completion_token(self) -> str:
        """A token naming this task's step: ``client.complete_task(token, result)`` completes it from
        anywhere once the task called ``pulsarflow.complete_later()`` (see pulsarflow.completion)."""
        return CompletionToken(self.workflow_id, self.position, self.generation, self.task_name).encode()

    def heartbeat(self, details: Any = None) -> None:
        """This attempt is alive (see ``pulsarflow.heartbeat``); ``details`` reach the next attempt."""
        self._beats[0] = time.monotonic()
        if details is None:
            return
        try:
            encoded = self.encode([details]) if self.encode is not None else b""
        except Exception as exc:
            raise SerializationError(f"heartbeat details {type(details).__name__} cannot be encoded by the payload "
                                     f"converter ({type(exc).__name__}: {exc}); pass what it encodes (JSON values, "
                                     "dataclasses, pydantic models). The details reported before are kept") from exc
        self._reported[:] = [details, encoded]

    @property
    def last_heartbeat(self) -> float:
        """When this attempt last called ``heartbeat`` (or started), on the monotonic clock."""
        return self._beats[0]

    @property
    def reported(self) -> tuple[bool, Any]:
        """Whether this attempt reported heartbeat details, and the last ones."""
        return (True, self._reported[0]) if self._reported else (False, None)

    @property
    def reported_bytes(self) -> bytes | None:
        """The last details as encoded at the call (None: none reported, or no encoder given)."""
        return self._reported[1] if self._reported and self.encode is not None else None

    def stop(self) -> None:
        """This attempt is over for the executor (it timed out): ``cancelled`` reads True from now on."""
        self._stopped.set()


_current: contextvars.ContextVar[TaskInfo | None] = contextvars.ContextVar("pulsarflow_task", default=None)


def task_info() -> TaskInfo:
    info = _current.get()
    if info is None:
        raise NotInTaskError("pulsarflow.task_info() is only available inside a running task (call it from "
                             "the task function, not from workflow or client code)")
    return info


def heartbeat(details: Any = None) -> None:
    """Tell the executor this task attempt is alive, with optional progress ``details``.

    A task declared with ``heartbeat_timeout`` must call it at least that often, or the
    attempt fails (HeartbeatTimeoutError) and is retried; the last ``details`` (anything
    the payload converter encodes) reach the next attempt as ``task_info().heartbeat_details``,
    so a long job can resume where it stopped. Only inside a task.
    """
    info = _current.get()
    if info is None:
        raise NotInTaskError("pulsarflow.heartbeat() is only available inside a running task (it tells the "
                             "executor an attempt is alive); in a workflow, use ctx.sleep or a signal")
    info.heartbeat(details)
