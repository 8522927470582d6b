"""A nightly sales report on a cron schedule, run by a durable scheduler workflow.

The schedule fires at 03:00 UTC every night (``cron="0 3 * * *"``). So that the demo ends
in a few seconds, it is switched to every second for three reports, then back to the
cron, and deleted.

Run it:  python -m examples.nightly
"""

from __future__ import annotations

import datetime as dt

import pulsarflow as pf
from pulsarflow.schedules import Schedules, scheduler

PUBLISHED: list[str] = []


@pf.task
def sales_total(region: str, day: str) -> float:
    return round(len(region) * 1000 + int(day[-2:]) * 17.5, 2)  # a stand-in for a warehouse query


@pf.task(service="notify")
def publish(region: str, text: str) -> str:
    PUBLISHED.append(text)
    return f"posted to #{region}-sales: {text}"


@pf.workflow(name="nightly-report")
async def nightly_report(ctx: pf.WorkflowContext, region: str) -> str:
    day = (ctx.now() - dt.timedelta(days=1)).date().isoformat()  # the day that just ended
    total = await ctx.task(sales_total, region, day)
    return await ctx.task(publish, region, f"sales of {region} on {day}: {total:.2f}")


def main() -> None:
    env = pf.EmbeddedEnvironment(nightly_report, sales_total, publish, scheduler)
    client = env.client()
    schedules = Schedules(client)
    schedules.create("nightly-emea", nightly_report, "emea", cron="0 3 * * *", overlap="skip")
    print(f"next report at {schedules.describe('nightly-emea').state.next_fire:%Y-%m-%d %H:%M} UTC")

    schedules.update("nightly-emea", every=1)  # the demo: a report every second
    env.pump(lambda: len(PUBLISHED) >= 3, timeout_s=10)
    state = schedules.describe("nightly-emea").state
    for run in [*state.recent, *state.running]:  # the last run may still be finishing
        print(f"{run.workflow_id} fired at {run.fire_at:%H:%M:%S}: {client.get_handle(run.workflow_id).result(5)}")

    schedules.update("nightly-emea", cron="0 3 * * *")
    schedules.pause("nightly-emea")
    state = schedules.describe("nightly-emea").state
    print(f"back on its cron, {state.status.lower()}: {state.started} reports so far")
    schedules.delete("nightly-emea")
    print(f"deleted: {schedules.describe('nightly-emea').state.status}")
    env.close()


if __name__ == "__main__":
    main()
