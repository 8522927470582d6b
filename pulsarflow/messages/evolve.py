"""``evolve(record, **changes)``: ``dataclasses.replace`` for the message records, in a third of its time.

The engines make a new state from the last on every message (an arrival appended, a
command issued), and ``dataclasses.replace`` on a record of thirty fields took a tenth of
a message's handling. ``evolve`` reads every field in one ``attrgetter`` call and builds
the record positionally; the record's own ``__init__`` still runs. Records whose fields
are not all ``init`` fields fall back to ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")

_plans: dict[type, tuple[attrgetter[Any], dict[str, int]] | None] = {}


def evolve(record: T, **changes: Any) -> T:
    """A copy of the dataclass ``record`` with ``changes`` applied (unknown names raise TypeError)."""
    cls = type(record)
    try:
        plan = _plans[cls]
    except KeyError:
        plan = _plans[cls] = _plan(cls)
    if plan is None:
        return dataclasses.replace(record, **changes)  # type: ignore[type-var]
    getter, index = plan
    values = list(getter(record))
    for name, value in changes.items():
        try:
            values[index[name]] = value
        except KeyError:
            raise TypeError(f"{cls.__name__} has no field {name!r}") from None
    return cls(*values)


def _plan(cls: type) -> tuple[attrgetter[Any], dict[str, int]] | None:
    fields = dataclasses.fields(cls)
    if len(fields) < 2 or not all(f.init for f in fields):
        return None
    names = [f.name for f in fields]
    return attrgetter(*names), {name: i for i, name in enumerate(names)}
