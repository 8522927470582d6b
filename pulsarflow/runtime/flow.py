"""Flow control settings: how many attempts of a service may run at once, and start per second.

A service's limits hold across every executor of that service (Functions, worker
processes, embedded executor threads), because they are kept in shared state
(``flow_leases.py``: memory, Redis or Pulsar function state). An attempt that finds a
limit reached is not run now and not lost: the executor publishes it again, delayed
(``flow_gate.py``); it is never dead-lettered and never counted as a failed attempt.
See docs/flow-control.md.

Where the limits are set, all checked when the configuration is read (a limit of 0, a
negative one or one that is not a whole number is refused, naming the setting):

- ``EmbeddedEnvironment(flow={"payments": FlowLimit(max_concurrent=5)})``;
- an executor Function's userConfig (functions.yaml): ``max_concurrent``,
  ``max_starts_per_second``, ``flow_store`` (function | redis), ``flow_lease_ms``,
  ``flow_retry_ms``; the function serves one service, so they are that service's;
- a worker process: ``run_engine(..., flow=limits_from_flags(...))`` with flags written
  ``SERVICE=N``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulsarflow.errors import DefinitionError

DEFAULT_LEASE_MS = 10_000  # a lease not renewed for this long is gone (a crashed executor frees its slot)
DEFAULT_RETRY_MS = 200  # an attempt held back by the concurrency limit comes back after about this long
STORES = ("function", "redis", "memory")

_MEANINGS = {
    "max_concurrent": "attempts of the service running at once across all its executors",
    "max_starts_per_second": "attempts of the service started per second across all its executors",
    "lease_ms": "how long a running attempt's slot lasts without renewal",
    "retry_ms": "how soon an attempt held back by the concurrency limit is tried again",
}
_FLOORS = {"lease_ms": 1_000, "retry_ms": 10}


@dataclass(frozen=True)
class FlowLimit:
    """The limits of one service; None: no limit of that kind."""

    max_concurrent: int | None = None
    max_starts_per_second: int | None = None
    lease_ms: int = DEFAULT_LEASE_MS
    retry_ms: int = DEFAULT_RETRY_MS

    def __post_init__(self) -> None:
        for name in ("max_concurrent", "max_starts_per_second"):
            value = getattr(self, name)
            if value is not None:
                whole_number(value, f"FlowLimit.{name}", _MEANINGS[name], floor=1, optional=True)
        for name, floor in _FLOORS.items():
            whole_number(getattr(self, name), f"FlowLimit.{name}", _MEANINGS[name], floor=floor)

    @property
    def limited(self) -> bool:
        return self.max_concurrent is not None or self.max_starts_per_second is not None

    @property
    def interval_ms(self) -> float:
        """The spacing of starts the rate limit keeps (0: no rate limit)."""
        return 1000 / self.max_starts_per_second if self.max_starts_per_second else 0.0


def whole_number(value: Any, setting: str, meaning: str, floor: int = 1, optional: bool = False) -> int:
    """``value`` as an int of at least ``floor``, or a DefinitionError naming ``setting`` and the fix."""
    number = _as_int(value)
    if number is not None and number >= floor:
        return number
    fix = "leave it out for no limit" if optional else "leave it out for the default"
    zero = " (0 would never start an attempt)" if optional and number == 0 else ""
    raise DefinitionError(f"{setting} must be a whole number of at least {floor} ({meaning}), got {value!r}"
                          f"{zero}; {fix}")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def limit_from_config(config: Mapping[str, Any], where: str = "userConfig") -> FlowLimit | None:
    """The limits an executor's userConfig sets for its service (None: none set)."""
    values: dict[str, int] = {}
    for name in ("max_concurrent", "max_starts_per_second"):
        if config.get(name) is not None:
            values[name] = whole_number(config[name], f"{where}.{name}", _MEANINGS[name], optional=True)
    for name, floor in _FLOORS.items():
        if config.get(f"flow_{name}") is not None:
            values[name] = whole_number(config[f"flow_{name}"], f"{where}.flow_{name}", _MEANINGS[name], floor)
    if "max_concurrent" not in values and "max_starts_per_second" not in values:
        if values:
            raise DefinitionError(f"{where} sets {sorted('flow_' + k for k in values)} but no limit: add "
                                  "max_concurrent or max_starts_per_second, or remove them")
        return None
    return FlowLimit(**values)


def store_from_config(config: Mapping[str, Any], where: str = "userConfig") -> str:
    """Where an executor Function keeps its leases: ``function`` (its own state, the default) or ``redis``."""
    store = config.get("flow_store", "function")
    if store not in STORES[:2]:
        raise DefinitionError(f"{where}.flow_store must be 'function' (the executor function's own state, "
                              f"shared by its instances) or 'redis', got {store!r}")
    return str(store)


def limits_from_flags(concurrent: Iterable[str] = (), rates: Iterable[str] = (),
                      lease_ms: int | None = None, retry_ms: int | None = None) -> dict[str, FlowLimit]:
    """Per-service limits from worker flags ``--max-concurrent SERVICE=N``, ``--max-starts-per-second SERVICE=N``."""
    found: dict[str, dict[str, int]] = {}
    for flag, name, items in (("--max-concurrent", "max_concurrent", concurrent),
                              ("--max-starts-per-second", "max_starts_per_second", rates)):
        for item in items:
            service, sep, value = item.partition("=")
            if not sep or not service.strip():
                raise DefinitionError(f"{flag} takes SERVICE=N (e.g. {flag} payments=5), got {item!r}")
            found.setdefault(service.strip(), {})[name] = whole_number(
                value, f"{flag} {service.strip()}", _MEANINGS[name], optional=True)
    extra = {k: v for k, v in (("lease_ms", lease_ms), ("retry_ms", retry_ms)) if v is not None}
    return {service: FlowLimit(**values, **extra) for service, values in found.items()}


def checked_limits(flow: Mapping[str, Any] | None) -> dict[str, FlowLimit]:
    """``EmbeddedEnvironment(flow=...)``: a mapping of service names to FlowLimit (or dicts of its fields)."""
    if flow is None:
        return {}
    if not isinstance(flow, Mapping):
        raise DefinitionError(f"flow must map service names to FlowLimit(...), got {flow!r}")
    limits = {}
    for service, limit in flow.items():
        if isinstance(limit, Mapping):
            limit = FlowLimit(**limit)
        if not isinstance(service, str) or not service or not isinstance(limit, FlowLimit):
            raise DefinitionError(f"flow must map service names to FlowLimit(...), got {service!r}: {limit!r}")
        limits[service] = limit
    return limits
