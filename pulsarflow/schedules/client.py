"""``Schedules``: create, change and read schedules through a ``pulsarflow.Client``.

Each call is a plain client call on the scheduler workflow ``schedule:<name>``: create
starts it (by id, so a repeated create starts nothing new), pause/resume/update/delete
send it a control signal, describe asks it a query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pulsarflow.converter import from_json
from pulsarflow.errors import ScheduleError, SerializationError, WorkflowNotFoundError
from pulsarflow.interpreter.definitions import Duration, workflow_definition
from pulsarflow.messages import client as status
from pulsarflow.schedules.spec import SKIP, ScheduleChanges, ScheduleSpec, interval_ms
from pulsarflow.schedules.workflow import (
    CONTROL_SIGNAL,
    DELETE,
    DESCRIBE_QUERY,
    ID_PREFIX,
    PAUSE,
    RESUME,
    SCHEDULER_NAME,
    UPDATE,
    ScheduleControl,
    ScheduleDescription,
    schedule_id,
)
from pulsarflow.sdk.client import Client

SCHEDULES_TAG = "pulsarflow:schedules"  # every scheduler workflow carries it: Schedules.list() reads it


class Schedules:
    """Schedules of workflows, on whatever engines ``client`` reaches (embedded or Pulsar).

    The engines must have the scheduler workflow registered: pass ``pulsarflow.schedules.scheduler``
    to the environment next to your workflows, or import it in one of the modules you deploy.
    """

    def __init__(self, client: Client, timeout: float | None = 30.0) -> None:
        self.client = client
        self.timeout = timeout

    def create(self, name: str, workflow: Callable[..., Any] | str, *args: Any, cron: str | None = None,
               every: Duration | None = None, overlap: str = SKIP, start_at: dt.datetime | None = None) -> str:
        """Start ``workflow(*args)`` on ``cron`` (5 fields, UTC) or ``every`` (seconds or a timedelta).

        ``overlap`` says what a fire does while the previous run still runs: ``"skip"`` it,
        ``"buffer_one"`` (start it when the previous run ends; at most one waits) or
        ``"allow_all"``. No fire happens before ``start_at``; an interval counts from it.
        Creating the same schedule again is a no-op; returns the scheduler's workflow id.
        """
        target, timeout_ms = self._target(workflow)
        spec = ScheduleSpec(name=name, workflow=target, args=list(args), cron=cron, every_ms=interval_ms(every),
                            overlap=overlap, start_at=start_at, timeout_ms=timeout_ms).validate()
        self._encodable(spec)
        workflow_id = schedule_id(name)
        try:
            existing = self.client.status(workflow_id, timeout=self.timeout)
        except WorkflowNotFoundError:
            self.client.start(SCHEDULER_NAME, spec, id=workflow_id, tags=[SCHEDULES_TAG])
            return workflow_id
        if existing.status != status.RUNNING:
            raise ScheduleError(
                f"schedule {name!r} was deleted (its workflow {workflow_id!r} is {existing.status}) and the store "
                "still holds it, so the name is taken; choose another name")
        if self._encodable(self.describe(name).spec) != self._encodable(spec):
            raise ScheduleError(f"schedule {name!r} exists with a different spec; change it with update() "
                                "or delete() it first")
        return workflow_id

    def update(self, name: str, *, cron: str | None = None, every: Duration | None = None,
               overlap: str | None = None, args: list[Any] | tuple[Any, ...] | None = None,
               start_at: dt.datetime | None = None) -> None:
        """Change what is given; a new cron or interval takes effect from now."""
        changes = ScheduleChanges(cron=cron, every_ms=interval_ms(every), overlap=overlap,
                                  args=None if args is None else list(args), start_at=start_at).validate(name)
        self._control(name, ScheduleControl(UPDATE, changes))

    def pause(self, name: str) -> None:
        """Stop starting runs (runs in flight go on) until ``resume``."""
        self._control(name, ScheduleControl(PAUSE))

    def resume(self, name: str) -> None:
        """Start runs again, from the next fire time after now (fires missed while paused are not made up)."""
        self._control(name, ScheduleControl(RESUME))

    def delete(self, name: str) -> None:
        """End the schedule; runs in flight go on. ``client.cancel`` of its id also cancels them."""
        self._control(name, ScheduleControl(DELETE))

    def list(self) -> list[str]:
        """Names of the schedules that exist (running or paused; not the deleted ones), sorted.

        Read from the tag index, which hears of a schedule once its workflow has started:
        one created a moment ago may take a moment to show.
        """
        return sorted(workflow_id.removeprefix(ID_PREFIX) for workflow_id in self.client.find_ids(SCHEDULES_TAG,
                                                                                                   timeout=self.timeout))

    def describe(self, name: str) -> ScheduleDescription:
        """The spec as it is now, and the state: status, next fire, counts, runs in flight and recent runs."""
        try:
            value = self.client.query(schedule_id(name), DESCRIBE_QUERY, timeout=self.timeout)
        except WorkflowNotFoundError as exc:
            raise WorkflowNotFoundError(f"no schedule {name!r}: create it first") from exc
        description = from_json(value, ScheduleDescription)
        if not isinstance(description, ScheduleDescription):
            raise ScheduleError(f"workflow {schedule_id(name)!r} is not a schedule (its describe answered {value!r})")
        return description

    # -- plumbing -------------------------------------------------------------------------

    def _target(self, workflow: Callable[..., Any] | str) -> tuple[str, int | None]:
        registry = self.client.registry
        if registry is not None and SCHEDULER_NAME not in registry.workflows:
            raise ScheduleError("the scheduler workflow is not registered: pass pulsarflow.schedules.scheduler to "
                                "the environment, or import it in one of the modules you deploy")
        if isinstance(workflow, str):
            defn = registry.workflow(workflow) if registry is not None else None
            return workflow, defn.timeout_ms if defn else None
        defn = workflow_definition(workflow)
        if registry is not None:
            registry.workflow(defn.name)  # an unregistered target fails here, not at its first fire
        return defn.name, defn.timeout_ms

    def _encodable(self, spec: ScheduleSpec) -> bytes:
        try:
            return self.client.converter.encode([spec])
        except SerializationError as exc:
            raise ScheduleError(f"the arguments of schedule {spec.name!r} cannot be serialized: {exc}") from exc

    def _control(self, name: str, control: ScheduleControl) -> None:
        try:
            self.client.signal(schedule_id(name), CONTROL_SIGNAL, control, timeout=self.timeout)
        except WorkflowNotFoundError as exc:
            raise WorkflowNotFoundError(f"no schedule {name!r}: it was never created, or it was deleted") from exc
