"""The PartStore contract: a key's parts, written with its value, as checks over any backend.

Part of ``contract.CHECKS``, so the function-state contract function runs them too; each
passes on function state by checking what it offers instead (no compare-and-set, no listing
of a key's parts). A store without parts makes them not applicable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pulsarflow.errors import StateConflictError
from pulsarflow.storage import Parts, PartStore, part_store

if TYPE_CHECKING:
    from pulsarflow.storage.contract import Subject


def _parts_of(s: Subject) -> PartStore:
    from pulsarflow.storage.contract import NotApplicable

    store = part_store(s.store)
    if store is None:
        raise NotApplicable("the store keeps no parts: states are written whole")
    return store


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def parts_are_written_with_their_value(s: Subject) -> None:
    store, key, other = _parts_of(s), s.key("parts"), s.key("parts-other")
    _require(store.get_parts({key: ["0.0"]}) == {key: {}}, "parts of a key never written must read as absent")
    _require(store.put_parts(key, b"head1", 0, Parts((("0.0", b"c0"), ("0.1", b"\x00" * 70_000)))) == 1,
             "put_parts must return the new version")
    found = store.get_parts({key: ["0.0", "0.1", "0.2"], other: ["0.0"]})
    _require(found == {key: {"0.0": b"c0", "0.1": b"\x00" * 70_000}, other: {}}, f"parts read back as {found!r}")
    store.put(key, b"head2", 1)
    _require(store.get_parts({key: ["0.0"]})[key] == {"0.0": b"c0"}, "a put without parts must keep the parts")
    store.put_parts(key, b"head3", 2, Parts((("1.0", b"new"),), drop=("0.0", "0.1", "0.9")))
    found = store.get_parts({key: ["0.0", "0.1", "1.0"]})
    _require(found == {key: {"1.0": b"new"}}, f"dropped parts must be gone, new ones there: {found!r}")
    stored = store.get(key)
    _require(stored is not None and (stored.value, stored.version) == (b"head3", 3), f"value read as {stored!r}")


def batched_part_writes_act_as_single_keys(s: Subject) -> None:
    """``put_parts_many``: as many ``put_parts``; with compare-and-set a refused write touches no part."""
    store = _parts_of(s)
    key, fresh = s.key("parts-batch"), s.key("parts-fresh")
    store.put_parts(key, b"head1", 0, Parts((("0.0", b"kept"),)))
    if not store.supports_cas:  # one writer per key: every write lands
        _require(store.put_parts_many([(key, b"head2", 1, False, Parts((("0.1", b"b"),))),
                                       (fresh, b"h", 0, False, Parts((("0.0", b"p"),)))]) == [],
                 "batched writes must all land")
        _require(store.get_parts({key: ["0.0", "0.1"], fresh: ["0.0"]}) ==
                 {key: {"0.0": b"kept", "0.1": b"b"}, fresh: {"0.0": b"p"}}, "batched parts must all land")
        return
    try:
        store.put_parts(key, b"lost", 0, Parts((("0.0", b"lost"), ("0.1", b"lost")), drop=("0.0",)))
    except StateConflictError:
        pass
    else:
        raise AssertionError("a stale write with parts was accepted")
    _require(store.get_parts({key: ["0.0", "0.1"]})[key] == {"0.0": b"kept"}, "a refused write changed the parts")
    stale = store.put_parts_many([(key, b"lost", 5, False, Parts((("0.1", b"lost"),))),
                                  (fresh, b"h", 0, False, Parts((("0.0", b"p"),)))])
    _require(stale == [key], f"only the stale batched write should be reported, got {stale!r}")
    _require(store.get_parts({key: ["0.1"], fresh: ["0.0"]}) == {key: {}, fresh: {"0.0": b"p"}},
             "a refused batched write must write no part, the others all of theirs")


def parts_go_with_their_key(s: Subject) -> None:
    """Memory and Redis: delete and expiry take the parts. Function state, which cannot list them: dropping does."""
    store = _parts_of(s)
    key = s.key("parts-delete")
    store.put_parts(key, b"head", 0, Parts((("0.0", b"c"), ("0.1", b"d"))))
    if type(store).__name__ == "FunctionStateStore":
        store.put_parts(key, b"head", 1, Parts(drop=("0.0", "0.1")))
        _require(store.get_parts({key: ["0.0", "0.1"]})[key] == {}, "dropped parts must be gone")
        return
    store.delete(key)
    _require(store.get_parts({key: ["0.0"]})[key] == {}, "delete must remove the key's parts")
    retention = store.retention_ms
    if retention is None:
        return
    done = s.key("parts-done")
    store.put_parts(done, b"head", 0, Parts((("0.0", b"c"),)), finished=True)
    s.let_time_pass(retention + max(50, retention // 5))
    _require(store.get(done) is None and store.get_parts({done: ["0.0"]})[done] == {},
             "the parts of a finished value must expire with it")


PART_CHECKS: dict[str, Callable[[Subject], None]] = {
    f.__name__: f for f in (parts_are_written_with_their_value, batched_part_writes_act_as_single_keys,
                          parts_go_with_their_key)
}
