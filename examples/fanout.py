"""Fan-out / fan-in: start one task per item in parallel, then combine; plus first-wins.

Run it:  python -m examples.fanout
"""

from __future__ import annotations

import pulsarflow as pf


@pf.task(service="pricing")
def quote(supplier: str, item: str) -> float:
    return round(sum(map(ord, supplier + item)) % 97 + 3.5, 2)


@pf.task(service="pricing")
async def score(word: str) -> int:
    return len(word)


@pf.workflow(name="best-quote")
async def best_quote(ctx: pf.WorkflowContext, item: str, suppliers: list[str]) -> dict[str, object]:
    quotes = await ctx.all(*[ctx.task(quote, s, item) for s in suppliers])
    cheapest = min(zip(quotes, suppliers))
    first = await ctx.any(ctx.task(score, item), ctx.task(score, item * 2))
    return {"cheapest": cheapest[1], "price": cheapest[0], "quotes": len(quotes), "first_score": first}


def main() -> None:
    env = pf.EmbeddedEnvironment(best_quote, quote, score)
    handle = env.client().start(best_quote, "widget", [f"supplier-{i}" for i in range(10)])
    print(f"best quote for widget: {handle.result(timeout=10)}")


if __name__ == "__main__":
    main()
