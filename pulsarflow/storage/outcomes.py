"""Building an executor's outcome store (``pulsarflow.runtime.outcomes``) from a function's user config.

Keys of ``userConfig``::

    outcomes: function | redis | off   where the markers are kept (default: Redis when the
                                       function has a Redis URL, else its function state)
    outcome_slots: 65536               function state: how many keys the markers share
    outcome_ttl_ms: 3600000            Redis: how long a marker is kept
    redis_url / the secret redis_url   Redis: where (a ``state: redis`` app's secret is used)

The backends are chosen here, among the adapters, so the runtime imports none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulsarflow.errors import DefinitionError
from pulsarflow.runtime.outcomes import (
    DEFAULT_SLOTS,
    DEFAULT_TTL_MS,
    FunctionStateOutcomeStore,
    OutcomeStore,
    RedisOutcomeStore,
)
from pulsarflow.storage.config import REDIS_URL_SECRET
from pulsarflow.topics import Topics


def outcome_store_from_config(config: Mapping[str, Any], context: Any) -> OutcomeStore | None:
    """The store ``config`` names (see the module doc); None for ``outcomes: off``."""
    kind = str(config.get("outcomes", "auto"))
    if kind == "off":
        return None
    url = config.get("redis_url")
    if kind in ("auto", "redis") and not url and config.get("state") == "redis":
        try:
            url = context.get_secret(REDIS_URL_SECRET)
        except Exception:  # no secrets provider, or no such secret
            url = None
    if kind == "redis" or (kind == "auto" and url):
        if not url:
            raise DefinitionError("outcomes: redis needs redis_url in the executor's config or its secret")
        import redis

        from pulsarflow.storage.redis import key_prefix

        topics = Topics(config.get("tenant", "public"), config.get("namespace", "default"),
                        config.get("app", "pulsarflow"))
        client = redis.Redis.from_url(str(url), socket_timeout=2, socket_connect_timeout=2)
        return RedisOutcomeStore(client, key_prefix(topics, "outcome"),
                                 int(config.get("outcome_ttl_ms", DEFAULT_TTL_MS)))
    return FunctionStateOutcomeStore(context, int(config.get("outcome_slots", DEFAULT_SLOTS)))
