"""An order saga: charge, reserve, ship; on failure, undo what was done, in reverse.

Run it:  python -m examples.order
"""

from __future__ import annotations

from dataclasses import dataclass

import pulsarflow as pf


@dataclass
class Order:
    order_id: str
    amount: float
    items: list[str]
    address: str


@pf.task(service="payments")
def charge(order: Order) -> str:
    return f"charge-{order.order_id}"


@pf.task(service="payments")
def refund(charge_id: str) -> str:
    return f"refunded {charge_id}"


@pf.task(service="warehouse")
def reserve(order: Order) -> str:
    return f"reservation-{order.order_id}"


@pf.task(service="warehouse")
def release(reservation_id: str) -> str:
    return f"released {reservation_id}"


@pf.task(service="shipping", retry=pf.RetryPolicy(max_attempts=3, initial_delay=0.05))
def ship(order: Order) -> str:
    if "nowhere" in order.address:
        raise ValueError(f"cannot ship to {order.address!r}")
    return f"parcel-{order.order_id}"


@pf.workflow(name="order")
async def order_workflow(ctx: pf.WorkflowContext, order: Order) -> dict[str, str]:
    undo: list[tuple[object, str]] = []
    try:
        charge_id = await ctx.task(charge, order)
        undo.append((refund, charge_id))
        reservation = await ctx.task(reserve, order)
        undo.append((release, reservation))
        parcel = await ctx.task(ship, order)
        return {"charge": charge_id, "reservation": reservation, "parcel": parcel}
    except pf.TaskFailedError:
        for compensation, ref in reversed(undo):
            await ctx.task(compensation, ref)
        raise


ALL = [order_workflow, charge, refund, reserve, release, ship]


def main() -> None:
    env = pf.EmbeddedEnvironment(*ALL)
    client = env.client()
    good = client.start(order_workflow, Order("A-1", 42.0, ["book"], "1 Main St"), id="order-A-1")
    print(f"order A-1 ({good.id}): {good.result(timeout=10)}")
    bad = client.start(order_workflow, Order("B-2", 10.0, ["lamp"], "nowhere"), id="order-B-2")
    try:
        bad.result(timeout=10)
    except pf.WorkflowFailedError as exc:
        print(f"order B-2 failed and was compensated:\n{exc}")
    print(f"status of B-2: {client.status('order-B-2').status}; messages exchanged: {env.transport.sent}")


if __name__ == "__main__":
    main()
