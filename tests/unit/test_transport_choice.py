"""Which queue an EmbeddedEnvironment runs on: durable with Redis state, in memory otherwise, or as told."""

from __future__ import annotations

import logging

import pytest

from pulsarflow.embedded import EmbeddedEnvironment
from pulsarflow.errors import DefinitionError
from pulsarflow.storage.memory import InMemoryStateStore
from pulsarflow.storage.redis import RedisStateStore
from pulsarflow.topics import Topics
from pulsarflow.transport.memory import InMemoryTransport
from pulsarflow.transport.redis import RedisTransport, queue_prefix
from tests.e2e import flows

pytest.importorskip("redis")
URL = "redis://127.0.0.1:6379/0"  # never connected to: building a store or a queue sends nothing


def test_the_queue_is_durable_when_the_state_is_in_redis_and_in_memory_otherwise() -> None:
    assert isinstance(EmbeddedEnvironment(*flows.ALL).transport, InMemoryTransport)
    store = RedisStateStore.from_url(URL, prefix="app:")
    durable = EmbeddedEnvironment(*flows.ALL, store=store).transport
    assert isinstance(durable, RedisTransport) and durable.client is store.client
    assert durable.prefix == "pulsarflow-queue:app:"
    assert durable.local_prefix == Topics().client(""), "answers to the app's clients stay in the process"
    assert isinstance(EmbeddedEnvironment(*flows.ALL, store=store, transport="memory").transport, InMemoryTransport)
    durable.close()


def test_tags_are_kept_beside_redis_state_and_a_queue_in_memory_over_it_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    store = RedisStateStore.from_url(URL, prefix="app:")
    with caplog.at_level(logging.WARNING, logger="pulsarflow.embedded"):
        env = EmbeddedEnvironment(*flows.ALL, store=store, transport="memory")
    assert "stay RUNNING" in caplog.text and "leave transport unset" in caplog.text
    assert isinstance(env.tag_store, RedisStateStore) and env.tag_store.client is store.client
    assert env.tag_store.prefix == "pulsarflow-tag:app:"
    assert isinstance(EmbeddedEnvironment(*flows.ALL).tag_store, InMemoryStateStore)


def test_the_queue_keys_never_fall_under_the_states_prefix() -> None:
    assert queue_prefix("pulsarflow:public/default/shop:workflow:") == "pulsarflow:public/default/shop:queue:"
    for prefix in ("app:", "pulsarflow:", "x"):  # a scan of a store's states never meets its queue
        assert not queue_prefix(prefix).startswith(prefix)


def test_a_durable_queue_without_redis_state_is_refused_with_the_fix() -> None:
    with pytest.raises(DefinitionError, match=r"store=RedisStateStore.from_url\(...\)"):
        EmbeddedEnvironment(*flows.ALL, transport="redis")
    with pytest.raises(DefinitionError, match="transport must be 'memory', 'redis' or a queue transport"):
        EmbeddedEnvironment(*flows.ALL, transport="kafka")  # type: ignore[arg-type]
