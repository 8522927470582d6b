"""The scheduler: a durable workflow, one per schedule, that starts the target workflow on time.

Its id is ``schedule:<name>``. It loops: sleep until the next fire time, raced against a
control signal (pause, resume, update, delete) and against the runs it started, which are
its child workflows (``schedule:<name>/<position>``, or ``schedule:<name>/r<n>/<position>``
after its n-th continue-as-new). Awaiting the children is how it knows whether the
previous run still runs, for the overlap policy. Being a workflow, it is durable: its
state is in the store, its timer is a delayed message, and replay is deterministic
(times come from ``ctx.now()`` and the recorded timers).

Every ``FIRES_PER_RUN`` fires, once no run is in flight (any time under ``allow_all``), it
continues as new so that its history stays short. A run still going at that moment is
no longer awaited (it is listed as DETACHED); so is every run in flight once a run of the
scheduler reaches ``MAX_STEPS_PER_RUN`` steps, which only a run that never ends causes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pulsarflow.errors import ChildWorkflowFailedError, WorkflowCancelledError
from pulsarflow.interpreter.context import WorkflowContext
from pulsarflow.interpreter.definitions import WORKFLOW_ATTR, WorkflowDefinition, workflow
from pulsarflow.interpreter.steps import Step
from pulsarflow.messages.state import child_workflow_id
from pulsarflow.schedules.spec import ALLOW_ALL, BUFFER_ONE, SKIP, ScheduleChanges, ScheduleSpec

SCHEDULER_NAME = "pulsarflow.schedule"
CONTROL_SIGNAL = "pulsarflow.schedule.control"
DESCRIBE_QUERY = "describe"
ID_PREFIX = "schedule:"
FIRES_PER_RUN = 20
MAX_STEPS_PER_RUN = 400
RECENT_RUNS = 10

ACTIVE, PAUSED, DELETED = "ACTIVE", "PAUSED", "DELETED"
PAUSE, RESUME, UPDATE, DELETE = "pause", "resume", "update", "delete"
RUNNING, COMPLETED, FAILED, CANCELLED, SKIPPED, DETACHED = (
    "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "SKIPPED", "DETACHED")


@dataclass
class ScheduledRun:
    """One fire: the run it started (or SKIPPED), and how that run ended."""

    workflow_id: str
    fire_at: dt.datetime
    started_at: dt.datetime | None = None
    status: str = RUNNING
    detail: str = ""


@dataclass
class ScheduleState:
    """What the scheduler carries from one run to the next (see continue-as-new)."""

    anchor: dt.datetime                   # an interval counts from here
    next_fire: dt.datetime
    status: str = ACTIVE
    fired: int = 0                        # fire times reached
    started: int = 0                      # runs started
    skipped: int = 0                      # fires dropped by the overlap policy
    buffered: dt.datetime | None = None   # a fire waiting for the run in flight (buffer_one)
    running: list[ScheduledRun] = field(default_factory=list)
    recent: list[ScheduledRun] = field(default_factory=list)  # finished or skipped, newest last
    runs: int = 0                         # continue-as-new count: names the children of this run


@dataclass
class ScheduleControl:
    """The control signal's data."""

    action: str
    changes: ScheduleChanges | None = None


@dataclass
class ScheduleDescription:
    """What ``Schedules.describe`` answers: the spec as it is now and the schedule's state."""

    spec: ScheduleSpec
    state: ScheduleState


def schedule_id(name: str) -> str:
    return f"{ID_PREFIX}{name}"


def run_id(scheduler_id: str, runs: int, position: int) -> str:
    """The id the workflow engine gives the child started at ``position``."""
    return child_workflow_id(scheduler_id, runs, position)


@workflow(name=SCHEDULER_NAME)
async def scheduler(ctx: WorkflowContext, spec: ScheduleSpec, carried: ScheduleState | None = None
                    ) -> ScheduleDescription:
    """Start ``spec.workflow`` on ``spec``'s cron or interval until deleted; returns the final description."""
    if carried is None:
        now = ctx.now()
        anchor = spec.interval_anchor(now)
        carried = ScheduleState(anchor=anchor, next_fire=spec.next_fire(now, anchor))
    return await _Loop(ctx, spec, carried).run()


class _Loop:
    def __init__(self, ctx: WorkflowContext, spec: ScheduleSpec, state: ScheduleState) -> None:
        self.ctx, self.spec, self.state = ctx, spec, state
        self.control: Step | None = None
        self.timer: Step | None = None
        self.timer_at: dt.datetime | None = None
        self.children: list[tuple[Step, ScheduledRun]] = []
        self.fires_this_run = 0

    def describe(self) -> ScheduleDescription:
        return ScheduleDescription(self.spec, self.state)

    async def run(self) -> ScheduleDescription:
        self.ctx.on_query(DESCRIBE_QUERY, self.describe)
        while self.state.status != DELETED:
            self._continue_as_new_if_due()
            self._start_buffered()
            waiting = self._waiting_on()
            with contextlib.suppress(ChildWorkflowFailedError):  # a failed run is recorded below
                await self.ctx.any(*waiting)
            for step in sorted((s for s in waiting if s.done), key=lambda s: s.order):
                self._on_done(step)
        return self.describe()

    def _waiting_on(self) -> list[Step]:
        if self.control is None:
            self.control = self.ctx.wait_signal(CONTROL_SIGNAL, type=ScheduleControl)
        steps = [self.control, *(step for step, _ in self.children)]
        if self.state.status == ACTIVE:
            at = self.state.next_fire
            if self.timer is None or self.timer.done or self.timer_at != at:
                self.timer, self.timer_at = self.ctx.sleep_until(at), at
            steps.append(self.timer)
        return steps

    def _on_done(self, step: Step) -> None:
        if isinstance(step.error, WorkflowCancelledError):
            raise step.error  # the schedule itself was cancelled: its running children are cancelled too
        if step is self.control:
            self.control = None
            self._on_control(step.value)
        elif step is self.timer:
            self.timer = None
            if self.state.status == ACTIVE and self.timer_at is not None:
                self._on_fire(self.timer_at)
        else:
            self._on_run_ended(step)

    # -- fires and runs ------------------------------------------------------------------

    def _on_fire(self, at: dt.datetime) -> None:
        state, overlap = self.state, self.spec.overlap
        state.fired += 1
        self.fires_this_run += 1
        busy = bool(self.children)
        if busy and overlap == BUFFER_ONE and state.buffered is None:
            state.buffered = at
        elif busy and overlap in (SKIP, BUFFER_ONE):
            state.skipped += 1
            self._remember(ScheduledRun("", at, status=SKIPPED, detail="the previous run was still running"))
        else:
            self._start(at)
        state.next_fire = self.spec.next_fire(max(at, self.ctx.now()), state.anchor)

    def _start_buffered(self) -> None:
        if self.state.buffered is not None and not self.children and self.state.status == ACTIVE:
            at, self.state.buffered = self.state.buffered, None
            self._start(at)

    def _start(self, fire_at: dt.datetime) -> None:
        # abandon: a run goes on when the scheduler continues as new (cancelling the scheduler still cancels it)
        step = self.ctx.child(_by_name(self.spec.workflow, self.spec.timeout_ms), *self.spec.args, abandon=True)
        record = ScheduledRun(run_id(self.ctx.workflow_id, self.state.runs, step.position), fire_at,
                              started_at=self.ctx.now())
        self.children.append((step, record))
        self.state.running.append(record)
        self.state.started += 1

    def _on_run_ended(self, step: Step) -> None:
        record = next(r for s, r in self.children if s is step)
        self.children = [(s, r) for s, r in self.children if s is not step]
        self.state.running.remove(record)
        if isinstance(step.error, ChildWorkflowFailedError):
            cancelled = step.error.error.type == WorkflowCancelledError.__name__
            record.status, record.detail = (CANCELLED if cancelled else FAILED), step.error.error.describe()
        else:
            record.status = COMPLETED
        self._remember(record)

    def _remember(self, record: ScheduledRun) -> None:
        self.state.recent = [*self.state.recent, record][-RECENT_RUNS:]

    # -- control --------------------------------------------------------------------------

    def _on_control(self, control: Any) -> None:
        if not isinstance(control, ScheduleControl):
            return  # not sent by Schedules: nothing to apply
        state, now = self.state, self.ctx.now()
        if control.action == PAUSE and state.status == ACTIVE:
            state.status = PAUSED
        elif control.action == RESUME and state.status == PAUSED:
            state.status = ACTIVE
            state.next_fire = self.spec.next_fire(now, state.anchor)  # fires missed while paused are not made up
        elif control.action == UPDATE and control.changes is not None:
            self.spec = self.spec.changed(control.changes)
            if control.changes.touches_timing():
                state.anchor = self.spec.interval_anchor(now)
                state.next_fire = self.spec.next_fire(now, state.anchor)
        elif control.action == DELETE:
            state.status = DELETED

    # -- bounded history ------------------------------------------------------------------

    def _continue_as_new_if_due(self) -> None:
        idle = not self.children or self.spec.overlap == ALLOW_ALL
        if not ((self.fires_this_run >= FIRES_PER_RUN and idle) or self.ctx.history_length >= MAX_STEPS_PER_RUN):
            return
        for record in self.state.running:
            record.status, record.detail = DETACHED, "still running when the schedule continued as new"
            self._remember(record)
        self.state.running = []
        self.state.runs += 1
        self.ctx.continue_as_new(self.spec, self.state)


def _by_name(name: str, timeout_ms: int | None) -> Any:
    """A reference to the workflow registered as ``name`` where the engine runs, for ``ctx.child``."""

    def registered_elsewhere(*args: Any) -> Any:
        raise RuntimeError(f"workflow {name!r} runs where it is registered, not through this reference")

    setattr(registered_elsewhere, WORKFLOW_ATTR, WorkflowDefinition(
        name=name, fn=registered_elsewhere, timeout_ms=timeout_ms, arg_hints=(), return_hint=None))
    return registered_elsewhere
