"""Schedules: start a workflow on a cron expression or an interval, durably.

Register ``scheduler`` with the engines next to your workflows, then use ``Schedules``::

    env = pf.EmbeddedEnvironment(report, pf.schedules.scheduler)
    schedules = pf.schedules.Schedules(env.client())
    schedules.create("nightly", report, "sales", cron="0 3 * * *", overlap="skip")

See docs/schedules.md.
"""

from pulsarflow.schedules.client import Schedules
from pulsarflow.schedules.cron import CronExpression
from pulsarflow.schedules.spec import ALLOW_ALL, BUFFER_ONE, OVERLAP_POLICIES, SKIP, ScheduleSpec
from pulsarflow.schedules.workflow import (
    SCHEDULER_NAME,
    ScheduleDescription,
    ScheduledRun,
    ScheduleState,
    schedule_id,
    scheduler,
)

__all__ = [
    "ALLOW_ALL", "BUFFER_ONE", "CronExpression", "OVERLAP_POLICIES", "SCHEDULER_NAME", "SKIP",
    "ScheduleDescription", "ScheduleSpec", "ScheduleState", "ScheduledRun", "Schedules", "schedule_id",
    "scheduler",
]
