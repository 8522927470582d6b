"""The 0.3 import path of :mod:`pulsarflow.pulsar.worker`, kept so code, function configs and app
entry points written against it go on working; new code imports from ``pulsarflow.pulsar``."""

from pulsarflow.pulsar.worker import (
    RELEASE_CHECK_S as RELEASE_CHECK_S,
)
from pulsarflow.pulsar.worker import (
    PulsarConnection as PulsarConnection,
)
from pulsarflow.pulsar.worker import (
    connect as connect,
)
from pulsarflow.pulsar.worker import (
    run_worker as run_worker,
)
