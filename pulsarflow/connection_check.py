"""The 0.3 import path of :mod:`pulsarflow.pulsar.connection_check`, kept so code, function configs and app
entry points written against it go on working; new code imports from ``pulsarflow.pulsar``."""

from pulsarflow.pulsar.connection_check import (
    PROBE_TOPIC as PROBE_TOPIC,
)
from pulsarflow.pulsar.connection_check import (
    check as check,
)
from pulsarflow.pulsar.connection_check import (
    main as main,
)

if __name__ == "__main__":
    raise SystemExit(main())
