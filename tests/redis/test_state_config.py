"""``state: redis`` in functions.yaml and userConfig: validation and the store it builds (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest

from pulsarflow.deploy import manifest as mf
from pulsarflow.errors import DefinitionError
from pulsarflow.pulsar.function import state_store_for
from pulsarflow.pulsar.function_state import FunctionStateStore
from pulsarflow.redaction import redact
from pulsarflow.storage.redis import RedisStateStore

FUNCTIONS = [{"engine": "workflow", "name": "wf"}, {"engine": "executor", "service": "default", "name": "ex"}]


class FakeContext:
    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self.secrets = secrets or {}

    def get_secret(self, name: str) -> str | None:
        return self.secrets.get(name)


def configs(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    manifest = mf.parse({"app": "shop", "functions": FUNCTIONS, **raw})
    return {spec.name: mf.function_config(manifest, spec, "p.zip") for spec in manifest.functions}


def test_redis_manifest_passes_retention_to_user_config_and_the_url_as_a_secret() -> None:
    out = configs({"state": "redis", "redis_url": "redis://db:6379/2", "retention_ms": "86400000"})
    user = out["wf"]["userConfig"]
    assert (user["state"], user["retention_ms"]) == ("redis", 86400000) and "redis_url" not in user
    assert out["wf"]["secrets"] == {"redis_url": "redis://db:6379/2"}


def test_redis_url_secret_goes_to_the_workflow_engine_only() -> None:
    out = configs({"state": "redis", "redis_url_secret": "pulsarflow-redis"})
    assert out["wf"]["secrets"] == {"redis_url": "pulsarflow-redis"}
    assert "secrets" not in out["ex"] and "redis_url" not in out["wf"]["userConfig"]


def test_function_state_stays_the_default() -> None:
    user = configs({})["wf"]["userConfig"]
    assert user["state"] == "function" and "retention_ms" not in user


@pytest.mark.parametrize(("raw", "message"), [
    ({"state": "mongo"}, r"state must be one of \['function', 'redis'\], got 'mongo'"),
    ({"state": "redis"}, "state: redis needs redis_url"),
    ({"state": "redis", "redis_url": "http://db:6379"}, "redis_url must look like redis://"),
    ({"state": "redis", "redis_url": "redis://db", "retention_ms": -5}, "retention_ms must be a positive"),
    ({"state": "redis", "redis_url": "redis://db", "retention_ms": "a week"}, "retention_ms must be a positive"),
    ({"retention_ms": 1000}, "need 'state: redis'"),
    ({"redis_url": "redis://db"}, "need 'state: redis'"),
])
def test_bad_state_settings_are_refused_with_the_fix(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        configs(raw)


def test_state_store_for_builds_a_namespaced_redis_store_from_user_config() -> None:
    store = state_store_for({"state": "redis", "redis_url": "redis://127.0.0.1:6379/3", "tenant": "t",
                             "namespace": "n", "app": "shop", "retention_ms": "5000"}, FakeContext())
    assert isinstance(store, RedisStateStore)
    assert (store.prefix, store.retention_ms, store.supports_cas) == ("pulsarflow:t/n/shop:workflow:", 5000, True)
    assert store.client.connection_pool.connection_kwargs["db"] == 3


def test_state_store_for_reads_the_url_from_a_function_secret() -> None:
    store = state_store_for({"state": "redis", "app": "shop"},
                            FakeContext({"redis_url": "redis://:s3cret@10.0.0.7:6380/0"}))
    assert isinstance(store, RedisStateStore)
    assert store.client.connection_pool.connection_kwargs["port"] == 6380
    assert "s3cret" not in store.where  # the password stays out of messages


def test_state_store_for_without_a_url_says_where_to_put_it() -> None:
    with pytest.raises(DefinitionError, match="its secret 'redis_url': set redis_url .* in functions.yaml"):
        state_store_for({"state": "redis"}, FakeContext())


def test_state_store_for_function_state_refuses_a_retention() -> None:
    assert isinstance(state_store_for({}, FakeContext()), FunctionStateStore)
    with pytest.raises(DefinitionError, match="function state cannot expire"):
        state_store_for({"state": "function", "retention_ms": 1000}, FakeContext())


def test_redact_hides_passwords() -> None:
    assert redact("redis://user:pw@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"
