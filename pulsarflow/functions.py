"""The 0.3 import path of :mod:`pulsarflow.pulsar.function`, kept so code, function configs and app
entry points written against it go on working; new code imports from ``pulsarflow.pulsar``."""

from pulsarflow.pulsar.function import (
    EngineFunction as EngineFunction,
)
from pulsarflow.pulsar.function import (
    RawBytesSerDe as RawBytesSerDe,
)
from pulsarflow.pulsar.function import (
    build_handler as build_handler,
)
from pulsarflow.pulsar.function import (
    state_store_for as state_store_for,
)
from pulsarflow.runtime.config import (
    max_message_bytes as max_message_bytes,
)
from pulsarflow.runtime.config import (
    workflow_cache_size as workflow_cache_size,
)
