"""FunctionStateStore's layout over a dict standing in for the function Context.

The real function state runs the full contract in tests/integration/test_function_state_contract.py;
these tests pin the stored layout (what the admin API shows) and the chunking of large values.
"""

from __future__ import annotations

import pytest

from pulsarflow.errors import BackendError
from pulsarflow.pulsar.function_state import CHUNK_BYTES, FunctionStateStore
from pulsarflow.storage.contract import CHECKS, NotApplicable, Subject


class DictContext:
    """get_state/put_state as the Python Functions Context has them: str in, bytes out, about 1 MiB at most."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get_state(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put_state(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("put_state wants a str")
        if len(value) > 1_048_576:
            raise RuntimeError("Received RST_STREAM with error code 8")
        self.data[key] = value.encode()


def test_small_values_are_version_colon_base64() -> None:
    context = DictContext()
    FunctionStateStore(context).put("wf-1", b"\x00\xff", 2)
    assert context.data == {"wf-1": b"3:AP8="}


def test_large_values_are_chunked_and_read_back_whole() -> None:
    context = DictContext()
    store = FunctionStateStore(context)
    value = bytes(range(256)) * (5 * CHUNK_BYTES // 256 + 7)
    assert store.put("big", value, 0) == 1
    assert context.data["big"] == b"1*6"
    stored = store.get("big")
    assert stored is not None and stored.value == value
    store.put("big", b"small now", 1)
    stored = store.get("big")
    assert stored is not None and stored.value == b"small now"
    store.put("big", value, 2)
    store.delete("big")
    assert store.get("big") is None
    assert all(v == b"" for k, v in context.data.items() if k.startswith("big\0"))


def test_a_chunk_from_another_write_is_never_mixed_in() -> None:
    context = DictContext()
    store = FunctionStateStore(context)
    store.put("big", b"a" * (CHUNK_BYTES + 1), 0)
    stored = store.get("big")
    assert stored is not None and stored.value == b"a" * (CHUNK_BYTES + 1)
    context.data["big\x001\x001"] = b"3:YmJi"  # a later writer (version 3) reused the slot
    with pytest.raises(BackendError, match="kept changing"):
        store.get("big")


def test_foreign_data_under_a_key_is_reported() -> None:
    context = DictContext()
    context.data["k"] = b"hello"
    with pytest.raises(BackendError, match="not pulsarflow's layout"):
        FunctionStateStore(context).get("k")


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_contract_over_the_dict_context(check: str) -> None:
    subject = Subject(FunctionStateStore(DictContext()))
    try:
        CHECKS[check](subject)
    except NotApplicable:
        assert check in {"stale_write_is_refused", "racing_writers_lose_no_update", "finished_values_expire"}
