"""One typed configuration of an engine's runtime, read once and checked whole.

A Pulsar Function gets it from its ``userConfig`` (functions.yaml, see
``pulsarflow.pulsar.function``), a worker process from its flags; both then build the same
runtime from it (``pulsarflow.runtime.builder``). Every key is checked here, when the
configuration is read, and a bad one is named with its fix, so a wrong setting fails the
deploy or the start, not the first message.

The keys that pick a backend (``state``, ``redis_url``, ``outcomes``, ``payload_codecs``,
``flow_store``) are read by the adapters that build those backends, from :attr:`raw`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulsarflow.errors import DefinitionError
from pulsarflow.runtime.flow import FlowLimit, limit_from_config
from pulsarflow.runtime.limits import DEFAULT_MAX_MESSAGE_BYTES
from pulsarflow.topics import Topics

ENGINES = ("workflow", "tag", "executor")
STATEFUL = ("workflow", "tag")
MIN_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class RuntimeConfig:
    """What one engine instance runs and how (the typed form of a function's userConfig)."""

    engine: str
    topics: Topics = field(default_factory=Topics)
    modules: tuple[str, ...] = ()
    events: bool = True  # publish every event to the app's events topic
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # the broker's maxMessageSize
    workflow_cache: int | None = None  # live workflows kept between messages (None: default, 0: off)
    batch: int = 1  # messages handled together (a Function with batch > 1 acknowledges them itself)
    service: str | None = None  # an executor's task service (flow-control limits are per service)
    flow: FlowLimit | None = None  # the limits of that service, if any
    outcome_check_after_ms: int = 1000
    outcome_lookups_always: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the backends' keys, as given

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise DefinitionError(f"userConfig.engine must be 'workflow', 'tag' or 'executor', got {self.engine!r}")
        if self.flow is not None and not self.service:
            raise DefinitionError("userConfig sets flow-control limits but not the executor's service: add "
                                  "service: <name> (the deploy tool writes it from functions.yaml)")

    @property
    def stateful(self) -> bool:
        return self.engine in STATEFUL

    @classmethod
    def from_user_config(cls, config: Mapping[str, Any]) -> RuntimeConfig:
        """Read and check a function's userConfig (the keys are listed in pulsarflow.pulsar.function)."""
        engine = config.get("engine")
        if engine not in ENGINES:
            raise DefinitionError(f"userConfig.engine must be 'workflow', 'tag' or 'executor', got {engine!r}")
        events = config.get("events", "topic")
        if events not in ("topic", "off"):
            raise DefinitionError(f"userConfig.events must be 'topic' or 'off', got {events!r}")
        return cls(
            engine=str(engine),
            topics=Topics(config.get("tenant", "public"), config.get("namespace", "default"),
                          config.get("app", "pulsarflow")),
            modules=tuple(m for m in str(config.get("modules", "")).split(",") if m.strip()),
            events=events == "topic",
            max_message_bytes=max_message_bytes(config),
            workflow_cache=workflow_cache_size(config),
            batch=_batch(config),
            service=str(config["service"]) if config.get("service") else None,
            flow=limit_from_config(config) if engine == "executor" else None,
            outcome_check_after_ms=_whole(config, "outcome_check_after_ms", 1000, 0),
            outcome_lookups_always=config.get("outcome_lookups") == "always",
            raw=dict(config),
        )


def as_runtime_config(config: RuntimeConfig | Mapping[str, Any]) -> RuntimeConfig:
    return config if isinstance(config, RuntimeConfig) else RuntimeConfig.from_user_config(config)


def workflow_cache_size(config: Mapping[str, Any]) -> int | None:
    """How many live workflows the engine keeps between messages (userConfig ``workflow_cache``; 0: off)."""
    value = config.get("workflow_cache")
    if value is None:
        return None
    size = _int_or(value, -1)
    if size < 0:
        raise DefinitionError(f"userConfig.workflow_cache must be a whole number of live workflows kept between "
                              f"messages (0 turns the cache off), got {value!r}")
    return size


def max_message_bytes(config: Mapping[str, Any]) -> int:
    """The broker's maxMessageSize, as userConfig ``max_message_bytes`` says (5 MiB by default)."""
    value = config.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)
    size = _int_or(value, 0)
    if size < MIN_MESSAGE_BYTES:
        raise DefinitionError(f"userConfig.max_message_bytes must be the broker's maxMessageSize in bytes "
                              f"(at least {MIN_MESSAGE_BYTES}; default {DEFAULT_MAX_MESSAGE_BYTES}), got {value!r}")
    return size


def _batch(config: Mapping[str, Any]) -> int:
    value = config.get("batch", 1)
    size = _int_or(value, 0)
    if size < 1:
        raise DefinitionError(f"userConfig.batch must be a whole number of messages handled together (1: one "
                              f"at a time), got {value!r}")
    return size


def _whole(config: Mapping[str, Any], key: str, default: int, floor: int) -> int:
    value = config.get(key, default)
    number = _int_or(value, floor - 1)
    if number < floor:
        raise DefinitionError(f"userConfig.{key} must be a whole number of at least {floor}, got {value!r}")
    return number


def _int_or(value: Any, fallback: int) -> int:
    if isinstance(value, bool):
        return fallback
    try:
        number = int(value)
    except (TypeError, ValueError):
        return fallback
    return number if str(number) == str(value).strip() or isinstance(value, int) else fallback
