"""An approval that waits for a human: a signal with a timeout, then a durable reminder.

Run it:  python -m examples.approval
"""

from __future__ import annotations

import datetime as dt

import pulsarflow as pf


@pf.task(service="notify")
def send_email(to: str, text: str) -> str:
    return f"mail to {to}: {text}"


@pf.workflow(name="expense-approval")
async def approval(ctx: pf.WorkflowContext, expense_id: str, amount: float) -> str:
    await ctx.task(send_email, "manager@example.com", f"please approve {expense_id} ({amount})")
    try:
        decision = await ctx.wait_signal("decision", timeout=dt.timedelta(days=2))
    except pf.SignalTimeoutError:
        await ctx.task(send_email, "finance@example.com", f"{expense_id} auto-rejected after 2 days")
        return "rejected (no answer)"
    return f"{decision['verdict']} by {decision['by']}"


def main() -> None:
    env = pf.EmbeddedEnvironment(approval, send_email)
    client = env.client()
    answered = client.start(approval, "EXP-7", 120.0, id="EXP-7")
    client.signal("EXP-7", "decision", {"verdict": "approved", "by": "dana"})
    print(f"EXP-7: {answered.result(timeout=10)}")
    print("EXP-8 waits two days for an answer; with the virtual clock of the test environment "
          "that takes no time:")
    from pulsarflow.testing import TestEnvironment

    test_env = TestEnvironment(approval, send_email)
    silent = test_env.client().start(approval, "EXP-8", 99.0)
    print(f"EXP-8: {silent.result()} at {test_env.clock.now_ms() // 1000} s since the epoch")


if __name__ == "__main__":
    main()
