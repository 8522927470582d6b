"""Building the workflow engine's state store from a function's user config.

Keys of ``userConfig`` (written by the deploy tool from functions.yaml)::

    state: function | redis      the backend (default: function)
    redis_url: redis://host:6379/0
                                 for state: redis, from functions deployed by releases up
                                 to 0.2.0; the deploy tool now passes the URL only as the
                                 function secret ``redis_url`` (``context.get_secret``)
    retention_ms: 604800000      how long a finished workflow's state is kept (Redis only;
                                 unset keeps it until deleted)
    tenant / namespace / app     name the Redis keys (see storage.redis.key_prefix)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulsarflow.errors import DefinitionError
from pulsarflow.storage import STATE_BACKENDS, StateStore, check_retention
from pulsarflow.topics import Topics

REDIS_URL_SECRET = "redis_url"


def parse_backend(value: Any, where: str) -> str:
    backend = "function" if value is None else value
    if backend not in STATE_BACKENDS:
        raise DefinitionError(f"{where}: state must be one of {list(STATE_BACKENDS)}, got {value!r}")
    return str(backend)


def parse_retention(value: Any, where: str) -> int | None:
    """A retention from YAML or userConfig (an int, or digits in a string); None when unset."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    try:
        return check_retention(value)
    except DefinitionError as exc:
        raise DefinitionError(f"{where}: {exc}") from None


def redis_url(config: Mapping[str, Any], context: Any) -> str:
    url = config.get("redis_url")
    if not url:
        try:
            url = context.get_secret(REDIS_URL_SECRET)
        except Exception:  # no secrets provider, or no such secret
            url = None
    if not url:
        raise DefinitionError(f"state: redis needs the Redis URL, which reaches the function as its secret "
                              f"{REDIS_URL_SECRET!r}: set redis_url (or redis_url_secret, naming the secret) in "
                              "functions.yaml and deploy again (see docs/deploy.md)")
    return str(url)


def state_store_from_config(config: Mapping[str, Any], context: Any) -> StateStore:
    backend = parse_backend(config.get("state"), "userConfig")
    retention = parse_retention(config.get("retention_ms"), "userConfig.retention_ms")
    if backend == "function":
        if retention is not None:
            raise DefinitionError("userConfig.retention_ms: Pulsar function state cannot expire finished "
                                  "workflows; remove retention_ms or use state: redis")
        from pulsarflow.pulsar.function_state import FunctionStateStore

        return FunctionStateStore(context)
    from pulsarflow.storage.redis import RedisStateStore, key_prefix

    topics = Topics(config.get("tenant", "public"), config.get("namespace", "default"),
                    config.get("app", "pulsarflow"))
    engine = str(config.get("engine", "workflow"))  # each engine its own key space
    return RedisStateStore.from_url(redis_url(config, context), prefix=key_prefix(topics, engine),
                                    retention_ms=retention if engine == "workflow" else None)
