"""Support tickets: the controls a long-running workflow needs.

One workflow per open ticket (a custom id: at most one open per ticket number), filed
under its customer's tag. Agents add notes by update, anyone reads the ticket by query,
a fix is retried after a failure, and closing a customer's account cancels all of their
tickets, which each clean up before they end.

Run it:  python -m examples.tickets
"""

from __future__ import annotations

import pulsarflow as pf

FIXED: set[str] = set()


@pf.task(service="notify")
def notify(customer: str, text: str) -> str:
    return f"to {customer}: {text}"


@pf.task(retry=pf.RetryPolicy(max_attempts=1))
def apply_fix(ticket: str) -> str:
    if ticket not in FIXED:
        raise RuntimeError(f"the fix for {ticket} needs a database migration first")
    return f"{ticket} fixed"


@pf.workflow(name="ticket")
async def ticket(ctx: pf.WorkflowContext, number: str, customer: str) -> str:
    notes: list[str] = []
    ctx.on_update("note", lambda text: notes.append(text) or len(notes))
    ctx.on_query("summary", lambda: {"ticket": number, "notes": list(notes)})
    try:
        await ctx.wait_signal("resolve")
        outcome = await ctx.task(apply_fix, number)
    except pf.WorkflowCancelledError:
        await ctx.task(notify, customer, f"{number} closed with your account")
        raise
    await ctx.task(notify, customer, outcome)
    return f"{outcome} after {len(notes)} note(s)"


def main() -> None:
    env = pf.EmbeddedEnvironment(ticket, notify, apply_fix)
    client = env.client()
    t1 = client.start(ticket, "T-1", "acme", custom_id="T-1", tags=["customer:acme"])
    again = client.start(ticket, "T-1", "acme", custom_id="T-1", tags=["customer:acme"])
    print(f"T-1 opened twice, one workflow: {t1.id == again.id}")
    t1.update("note", "customer reports a 500 on checkout")
    t1.update("note", "reproduced")
    print(f"query: {t1.query('summary')}")
    client.signal(t1.id, "resolve")
    try:
        t1.result(timeout=10)
    except pf.WorkflowFailedError as exc:
        print(f"first attempt: {exc.error.chain()[-1].message}")
    FIXED.add("T-1")
    t1.retry()
    print(f"after retry: {t1.result(timeout=10)}")
    t2 = client.start(ticket, "T-2", "globex", custom_id="T-2", tags=["customer:globex"])
    t3 = client.start(ticket, "T-3", "globex", custom_id="T-3", tags=["customer:globex"])
    t2.update("note", "billing question")
    print(f"globex tickets: {sorted(client.find_ids('customer:globex')) == sorted([t2.id, t3.id])}")
    client.cancel_tag("customer:globex", "account closed")
    for handle in (t2, t3):
        try:
            handle.result(timeout=10)
        except pf.WorkflowCancelledError as exc:
            print(f"{handle.id[:8]}: {exc}")


if __name__ == "__main__":
    main()
