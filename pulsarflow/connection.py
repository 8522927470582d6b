"""The 0.3 import path of :mod:`pulsarflow.pulsar.connection`, kept so code, function configs and app
entry points written against it go on working; new code imports from ``pulsarflow.pulsar``."""

from pulsarflow.pulsar.connection import (
    DEFAULTS as DEFAULTS,
)
from pulsarflow.pulsar.connection import (
    ENVIRONMENT as ENVIRONMENT,
)
from pulsarflow.pulsar.connection import (
    OAUTH2_PLUGIN as OAUTH2_PLUGIN,
)
from pulsarflow.pulsar.connection import (
    OVERRIDES as OVERRIDES,
)
from pulsarflow.pulsar.connection import (
    TLS_PLUGIN as TLS_PLUGIN,
)
from pulsarflow.pulsar.connection import (
    TOKEN_PLUGIN as TOKEN_PLUGIN,
)
from pulsarflow.pulsar.connection import (
    Auth as Auth,
)
from pulsarflow.pulsar.connection import (
    ConnectionConfig as ConnectionConfig,
)
from pulsarflow.pulsar.connection import (
    PulsarAccessError as PulsarAccessError,
)
from pulsarflow.pulsar.connection import (
    Settings as Settings,
)
from pulsarflow.pulsar.connection import (
    add_arguments as add_arguments,
)
from pulsarflow.pulsar.connection import (
    as_config as as_config,
)
from pulsarflow.pulsar.connection import (
    from_args as from_args,
)
from pulsarflow.pulsar.connection import (
    from_client_conf as from_client_conf,
)
from pulsarflow.pulsar.connection import (
    parse_auth as parse_auth,
)
from pulsarflow.pulsar.connection import (
    read_client_conf as read_client_conf,
)
