"""The one place that turns a RuntimeConfig into an engine and the handler that runs it.

The embedded runtime, the Pulsar Functions and the worker processes all build their
engines and handlers here; what differs between them is only what they pass in: the
transport and codec of their place, the state store, the event observer, and for
executors the outcome markers and the flow gate.
"""

from __future__ import annotations

from typing import Any

from pulsarflow.clock import Clock
from pulsarflow.codec import Codec
from pulsarflow.converter import PayloadConverter
from pulsarflow.engines.tag import TagEngine
from pulsarflow.engines.workflow import WorkflowEngine
from pulsarflow.events import Observer
from pulsarflow.interpreter.registry import Registry
from pulsarflow.runtime.admission import Admission
from pulsarflow.runtime.config import RuntimeConfig
from pulsarflow.runtime.executor import TaskExecutor
from pulsarflow.runtime.flow_gate import FlowGate
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.runtime.outcomes import Outcomes
from pulsarflow.storage import StateStore
from pulsarflow.transport import Transport


def build_engine(config: RuntimeConfig, registry: Registry, converter: PayloadConverter, clock: Clock,
                 outcomes: Outcomes | None = None, gate: FlowGate | None = None) -> Any:
    """The engine ``config.engine`` names (outcome markers and the flow gate: executors only)."""
    if config.engine == "workflow":
        return WorkflowEngine(registry, converter, config.topics, config.workflow_cache)
    if config.engine == "tag":
        return TagEngine(config.topics)
    return TaskExecutor(registry, converter, config.topics, clock, outcomes, gate)


def build_handler(config: RuntimeConfig, engine: Any, codec: Codec, transport: Transport, clock: Clock,
                  store: StateStore | None, observer: Observer | None = None) -> MessageHandler:
    """The shared runtime around ``engine``: state only for the stateful engines, the app's limits."""
    return MessageHandler(engine, codec, transport, clock, store if config.stateful else None,
                          config.topics.dead_letters, observer, Admission(config.topics, config.max_message_bytes))
