"""The task executor: runs user task code, then applies the task engine's decision.

Stateless; many run side by side on a shared subscription. Sync tasks run inline, or
on a thread of their own when they have a per-attempt timeout (``runtime/attempts.py``:
an attempt that times out gives its thread up, so hung tasks cannot starve later ones);
async tasks run on the executor's own event loop. A timed-out attempt's
``task_info().cancelled`` turns True, so the task can stop.

With ``outcomes`` (``runtime/outcomes.py``) the executor remembers what each attempt it
completed published; a redelivered attempt with a marker publishes that again instead of
running the task once more (a broker that crashed before it made an acknowledgement
durable redelivers it).

With ``flow`` (``runtime/flow_gate.py``) an attempt of a service with limits runs only
with a lease; one that finds a limit reached is published again, delayed, instead of run.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from pulsarflow import tracing
from pulsarflow.clock import Clock
from pulsarflow.completion import CompleteLater
from pulsarflow.converter import PayloadConverter, decode_one
from pulsarflow.engines import task as task_engine
from pulsarflow.engines.outgoing import Decision
from pulsarflow.failures import error_info
from pulsarflow.interpreter.definitions import TaskDefinition
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import CancelTask, ExecuteTask, TaskExecutorMessage
from pulsarflow.runtime.attempts import AttemptThreads, HeartbeatTimeoutError, TooManyHungAttemptsError
from pulsarflow.runtime.cancellations import Cancellations, cancellation_key
from pulsarflow.runtime.flow_gate import FlowGate, Ticket
from pulsarflow.runtime.outcomes import Outcomes
from pulsarflow.runtime.task_info import TaskInfo, _current
from pulsarflow.topics import Topics


class AttemptTimeoutError(Exception):
    """One attempt ran past the task's ``timeout``; retried like any other failure."""


class TaskExecutor:
    input_type = TaskExecutorMessage
    state_type = None

    def __init__(self, registry: Registry, converter: PayloadConverter, topics: Topics, clock: Clock,
                 outcomes: Outcomes | None = None, flow: FlowGate | None = None,
                 cancellations: Cancellations | None = None) -> None:
        self.registry = registry
        self.outcomes = outcomes
        self.flow = flow
        self.converter = converter
        self.topics = topics
        self.clock = clock
        self.cancellations = cancellations if cancellations is not None else Cancellations()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: AttemptThreads | None = None

    @staticmethod
    def key(envelope: TaskExecutorMessage) -> str:
        return envelope.task_id

    def handle(self, state: None, envelope: TaskExecutorMessage, now_ms: int) -> Decision[None]:
        task = envelope.message
        if isinstance(task, CancelTask):
            self.cancellations.add(cancellation_key(task.task_id, task.generation))
            return Decision(None, [], unchanged=True)
        if cancellation_key(task.task_id, task.generation) in self.cancellations:  # not run once cancelled
            return Decision(None, [], unchanged=True)
        if self.outcomes is not None:
            recorded = self.outcomes.recorded(task, now_ms)
            if recorded is not None:  # this attempt ran before: publish its outcome again, do not run it
                return Decision(None, recorded, unchanged=True)
        admitted = self.flow.admit(task) if self.flow is not None else None
        if admitted is not None and not isinstance(admitted, Ticket):  # a limit is reached: later, not lost
            assert self.flow is not None
            return Decision(None, [self.flow.deferral(envelope, task, admitted)], unchanged=True)
        try:
            decision = self._run(task)
        finally:
            if admitted is not None and self.flow is not None:
                self.flow.finish(admitted)
        if self.outcomes is not None:
            self.outcomes.completed(task, decision.outgoing)
        return decision

    def _run(self, task: ExecuteTask) -> Decision[None]:
        attempt: TaskInfo | None = None
        try:
            defn = self.registry.task(task.task_name)
            args = self.converter.decode(task.input, defn.arg_hints)
            previous = decode_one(self.converter, task.heartbeat_details) if task.heartbeat_details else None
            attempt = TaskInfo(task.workflow_id, task.task_id, task.task_name, task.attempt, task.generation,
                               self.cancellations, position=task.position, heartbeat_details=previous,
                               encode=self.converter.encode)
            token = _current.set(attempt)
            try:
                with tracing.span(f"pulsarflow.task {task.task_name}", task.trace, "CONSUMER",
                                  workflow_id=task.workflow_id, position=task.position, attempt=task.attempt):
                    value = tracing.intercept_task(attempt, lambda: self._call(defn, args, task))
            finally:
                _current.reset(token)
            result = self.converter.encode([value])
        except CompleteLater:  # the outcome comes from outside, with the completion token: nothing to send
            return Decision(None, [], unchanged=True)
        except Exception as exc:  # every failure is reported: retried or returned to the workflow
            task = self._with_details(task, attempt)
            info = error_info(exc, task_name=task.task_name, attempts=task.attempt, workflow_id=task.workflow_id)
            return Decision(None, task_engine.after_failure(self.topics, task, info, self.clock.now_ms()),
                            unchanged=True, errors=(info,))
        return Decision(None, task_engine.after_success(self.topics, task, result, self.clock.now_ms()),
                        unchanged=True)

    def _with_details(self, task: ExecuteTask, attempt: TaskInfo | None) -> ExecuteTask:
        """The task with the details its attempt last reported, for the next attempt (if it reported any)."""
        encoded = attempt.reported_bytes if attempt is not None else None
        return task if encoded is None else replace(task, heartbeat_details=encoded)  # encoded at the call

    def _call(self, defn: TaskDefinition, args: list[Any], task: ExecuteTask) -> Any:
        timeout = task.attempt_timeout_ms / 1000 if task.attempt_timeout_ms is not None else None
        info = _current.get()
        silence = defn.heartbeat_timeout_ms / 1000 if defn.heartbeat_timeout_ms is not None else None
        beat = None if silence is None or info is None else (
            lambda: silence - (time.monotonic() - info.last_heartbeat))
        if defn.is_async:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            try:
                return self._loop.run_until_complete(_watched(defn.fn(*args), timeout, beat))
            except asyncio.TimeoutError:
                if info is not None:
                    info.stop()
                raise AttemptTimeoutError(f"attempt {task.attempt} ran past {timeout}s") from None
            except HeartbeatTimeoutError:
                if info is not None:
                    info.stop()
                raise HeartbeatTimeoutError(f"attempt {task.attempt} sent no heartbeat for {silence}s "
                                            "(heartbeat_timeout)") from None
        if timeout is None and beat is None:
            return defn.fn(*args)
        if self._threads is None:
            self._threads = AttemptThreads()
        try:
            return self._threads.run(contextvars.copy_context().run, defn.fn, *args, timeout=timeout,
                                     name=f"task {task.task_name!r} ({task.task_id})", heartbeat=beat)
        except TooManyHungAttemptsError as exc:
            raise AttemptTimeoutError(f"attempt {task.attempt} did not start: {exc}") from None
        except HeartbeatTimeoutError:
            if info is not None:
                info.stop()
            raise HeartbeatTimeoutError(
                f"attempt {task.attempt} sent no heartbeat for {silence}s (heartbeat_timeout; task_info().cancelled "
                "is now True for it)") from None
        except TimeoutError:
            if info is not None:
                info.stop()
            raise AttemptTimeoutError(
                f"attempt {task.attempt} ran past {timeout}s (task_info().cancelled is now True for it: a task "
                "that checks it can stop; its thread is left to finish and its result is ignored)") from None

    def close(self) -> None:
        if self.flow is not None:
            self.flow.close()
        if self._loop is not None:
            self._loop.close()
        if self._threads is not None:
            self._threads.close()


async def _watched(coro: Coroutine[Any, Any, Any], timeout: float | None,
                   beat: Callable[[], float] | None) -> Any:
    """Await ``coro`` within ``timeout`` (asyncio.TimeoutError) and while its heartbeat is on time."""
    if beat is None:
        return await asyncio.wait_for(coro, timeout)
    job = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        left = None if deadline is None else deadline - loop.time()
        wait = max(0.0, min(w for w in (left, beat()) if w is not None))
        done, _ = await asyncio.wait({job}, timeout=wait)
        if done:
            return job.result()
        if deadline is not None and loop.time() >= deadline:
            job.cancel()
            raise asyncio.TimeoutError
        if beat() <= 0:
            job.cancel()
            raise HeartbeatTimeoutError
