"""One contract for every StateStore backend (Redis and Pulsar function state join in their suites)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pulsarflow.errors import StateConflictError
from pulsarflow.storage import StateStore
from pulsarflow.storage.memory import InMemoryStateStore

BACKENDS: dict[str, Callable[[], StateStore]] = {"memory": InMemoryStateStore}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest) -> StateStore:
    return BACKENDS[request.param]()


def test_missing_key_reads_as_none(store: StateStore) -> None:
    assert store.get("absent") is None
    store.delete("absent")  # no error


def test_put_get_delete(store: StateStore) -> None:
    assert store.put("k", b"v1", 0) == 1
    assert store.get("k").value == b"v1" and store.get("k").version == 1
    assert store.put("k", b"v2", 1) == 2
    store.delete("k")
    assert store.get("k") is None
    assert store.put("k", b"v3", 0) == 1


def test_stale_version_is_refused_and_changes_nothing(store: StateStore) -> None:
    if not store.supports_cas:
        pytest.skip("backend relies on one writer per key")
    store.put("k", b"v1", 0)
    with pytest.raises(StateConflictError, match="version 1"):
        store.put("k", b"lost", 0)
    assert store.get("k").value == b"v1"


def test_racing_writers_lose_no_update(store: StateStore) -> None:
    if not store.supports_cas:
        pytest.skip("backend relies on one writer per key")
    store.put("counter", b"0", 0)

    def increment() -> None:
        for _ in range(50):
            while True:
                current = store.get("counter")
                try:
                    store.put("counter", str(int(current.value) + 1).encode(), current.version)
                    break
                except StateConflictError:
                    continue

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("counter").value == b"200"


def test_unicode_keys_and_large_binary_values(store: StateStore) -> None:
    value = bytes(range(256)) * 8192  # 2 MiB, every byte value
    store.put("wörkflow/日本/🚀", value, 0)
    assert store.get("wörkflow/日本/🚀").value == value
    assert store.get("workflow/日本/🚀") is None
