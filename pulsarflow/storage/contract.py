"""The StateStore contract as plain checks, so the same checks run everywhere.

pytest runs them over the in-memory and Redis stores (tests/contract); a Pulsar Function
(:mod:`pulsarflow.pulsar.contract_function`) runs them over its own function state and
publishes the outcomes. A check raises AssertionError when the store breaks the
contract and :class:`NotApplicable` when the store does not offer what the check needs
(compare-and-set, retention): not applicable is never counted as passed.

Every check works under its own keys below ``Subject.namespace`` and deletes them after.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from pulsarflow.errors import StateConflictError
from pulsarflow.storage import StateStore, Versioned

log = logging.getLogger("pulsarflow.storage.contract")

PASSED, FAILED, NOT_APPLICABLE = "passed", "failed", "not applicable"
LARGE_VALUE_BYTES = 3 * 1024 * 1024
MAX_RETENTION_TO_WAIT_MS = 5_000


class NotApplicable(Exception):
    """The store does not offer what a check needs; the reason says what."""


def _sleep_ms(ms: int) -> None:
    time.sleep(ms / 1000)


@dataclass
class Subject:
    """A store under test. ``let_time_pass(ms)`` waits (or advances a virtual clock)."""

    store: StateStore
    namespace: str = "contract/"
    let_time_pass: Callable[[int], None] = _sleep_ms
    used: list[str] = field(default_factory=list)

    def key(self, name: str) -> str:
        key = self.namespace + name
        self.used.append(key)
        return key

    def cleanup(self) -> None:
        for key in self.used:
            self.store.delete(key)
        self.used.clear()


@dataclass(frozen=True)
class Outcome:
    check: str
    status: str
    detail: str = ""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _needs_cas(s: Subject) -> None:
    if not s.store.supports_cas:
        raise NotApplicable("no compare-and-set: the backend relies on one writer per key")


def _value(s: Subject, key: str) -> bytes | None:
    stored = s.store.get(key)
    return None if stored is None else stored.value


# -- the checks -------------------------------------------------------------------------


def missing_key_reads_as_none(s: Subject) -> None:
    key = s.key("never-written")
    require(s.store.get(key) is None, "get of a key never written must return None")
    s.store.delete(key)  # must not raise
    require(s.store.get(key) is None, "delete of a missing key must leave it missing")


def put_get_delete(s: Subject) -> None:
    key = s.key("cycle")
    require(s.store.put(key, b"v1", 0) == 1, "the first write must return version 1")
    stored = s.store.get(key)
    require(stored is not None and (stored.value, stored.version) == (b"v1", 1), f"read back {stored!r}")
    require(s.store.put(key, b"v2", 1) == 2, "the second write must return version 2")
    require(s.store.put(key, b"", 2) == 3, "an empty value is a value: version 3")
    stored = s.store.get(key)
    require(stored is not None and (stored.value, stored.version) == (b"", 3), f"empty value read as {stored!r}")
    s.store.delete(key)
    require(s.store.get(key) is None, "a deleted key must read as None")
    require(s.store.put(key, b"again", 0) == 1, "after delete the next write expects 0 and returns 1")


def stale_write_is_refused(s: Subject) -> None:
    _needs_cas(s)
    key, absent = s.key("stale"), s.key("stale-absent")
    s.store.put(key, b"v1", 0)
    for expected in (0, 2, 7):
        try:
            s.store.put(key, b"lost", expected)
        except StateConflictError as exc:
            require("version 1" in str(exc), f"the conflict should name the stored version: {exc}")
        else:
            raise AssertionError(f"a write expecting version {expected} over version 1 was accepted")
    stored = s.store.get(key)
    require(stored is not None and (stored.value, stored.version) == (b"v1", 1), f"refused writes changed {stored!r}")
    try:
        s.store.put(absent, b"lost", 1)
    except StateConflictError:
        pass
    else:
        raise AssertionError("a write expecting version 1 of an absent key was accepted")
    require(s.store.get(absent) is None, "a refused write must not create the key")


def racing_writers_lose_no_update(s: Subject, writers: int = 4, increments: int = 25) -> None:
    _needs_cas(s)
    key = s.key("counter")
    s.store.put(key, b"0", 0)
    conflicts: list[int] = []
    errors: list[BaseException] = []

    def increment() -> None:
        try:
            for _ in range(increments):
                while True:
                    current = s.store.get(key)
                    if current is None:
                        raise AssertionError("the counter disappeared")
                    try:
                        s.store.put(key, str(int(current.value) + 1).encode(), current.version)
                        break
                    except StateConflictError:
                        conflicts.append(1)
        except BaseException as exc:  # reported below, a thread cannot fail the check itself
            errors.append(exc)

    threads = [threading.Thread(target=increment) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    require(not errors, f"a writer failed: {errors[:1]!r}")
    stored = s.store.get(key)
    total = writers * increments
    require(stored is not None and stored.value == str(total).encode(),
            f"{writers} writers x {increments} increments ended at {stored!r}, expected {total}")
    require(stored is not None and stored.version == total + 1, f"version {stored!r}, expected {total + 1}")


def reads_are_never_torn(s: Subject, writes: int = 60, size: int = 64 * 1024) -> None:
    key = s.key("torn")
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            stored = s.store.get(key)
            if stored is not None:
                head = stored.value[:16].decode(errors="replace").strip()
                if head != str(stored.version) or len(stored.value) != size:
                    seen.append(f"version {stored.version} with a value of version {head!r}, {len(stored.value)} B")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for version in range(writes):
            s.store.put(key, f"{version + 1:<16}".encode() + bytes([version % 256]) * (size - 16), version)
    finally:
        done.set()
        reader.join()
    require(not seen, f"a reader saw a value and version from different writes: {seen[:3]}")


def keys_are_independent(s: Subject) -> None:
    names = ["a", "a:b", "a/b", "A", "a ", "ab"]
    keys = [s.key(f"indep/{n}") for n in names]
    for i, key in enumerate(keys):
        s.store.put(key, f"value {i}".encode(), 0)
    s.store.delete(keys[0])
    require(s.store.get(keys[0]) is None, "the deleted key still reads")
    for i, key in enumerate(keys[1:], start=1):
        require(_value(s, key) == f"value {i}".encode(), f"key {key!r} changed when another one did")


def unicode_keys(s: Subject) -> None:
    names = ["wörkflow/日本/🚀", "ключ", "مفتاح", "tab\there", "é", "e\u0301"]  # last two: NFC vs NFD
    keys = [s.key(f"unicode/{n}") for n in names]
    for i, key in enumerate(keys):
        s.store.put(key, f"value {i}".encode(), 0)
    for i, key in enumerate(keys):
        require(_value(s, key) == f"value {i}".encode(), f"key {key!r} read back {_value(s, key)!r}")
    require(s.store.get(s.namespace + "unicode/workflow/日本/🚀") is None, "a similar key must not match")


def large_values(s: Subject, size: int = LARGE_VALUE_BYTES) -> None:
    key = s.key("large")
    value = bytes(range(256)) * (size // 256)
    s.store.put(key, value, 0)
    require(_value(s, key) == value, f"a {size} B value did not round-trip")
    bigger = value + b"\x00\xff" * 1024
    s.store.put(key, bigger, 1)
    require(_value(s, key) == bigger, "a rewrite of a large value did not round-trip")


def finished_values_expire(s: Subject) -> None:
    retention = s.store.retention_ms
    if retention is None:
        raise NotApplicable("no retention: finished values are kept until deleted")
    if retention > MAX_RETENTION_TO_WAIT_MS:
        raise NotApplicable(f"retention_ms={retention} is too long to wait for in a check")
    done, running, revived = s.key("done"), s.key("running"), s.key("revived")
    s.store.put(done, b"done", 0, finished=True)
    s.store.put(running, b"running", 0)
    s.store.put(revived, b"first", 0, finished=True)
    s.store.put(revived, b"second", 1)  # an unfinished write keeps the key for good again
    require(_value(s, done) == b"done", "a finished value must stay readable until its retention passes")
    s.let_time_pass(retention // 2)
    require(_value(s, done) == b"done", "a finished value expired before its retention")
    s.let_time_pass(retention - retention // 2 + max(50, retention // 5))
    require(s.store.get(done) is None, f"a finished value is still there {retention} ms after its write")
    require(_value(s, running) == b"running", "an unfinished value must never expire")
    require(_value(s, revived) == b"second", "an unfinished rewrite must clear the expiry")
    require(s.store.put(done, b"new", 0) == 1, "an expired key is absent: its next write expects 0")


def batches_act_as_single_keys(s: Subject) -> None:
    """``get_many``/``put_many``: as many gets and puts; a stale write fails alone, the others land."""
    a, b, c, absent = s.key("batch-a"), s.key("batch-b"), s.key("batch-c"), s.key("batch-absent")
    require(s.store.get_many([a, b]) == {}, "get_many of absent keys must return nothing")
    require(s.store.put_many([(a, b"a1", 0, False), (b, b"b1", 0, True)]) == [], "fresh writes must all land")
    found = s.store.get_many([a, b, absent])
    require(found == {a: Versioned(b"a1", 1), b: Versioned(b"b1", 1)}, f"get_many read {found!r}")
    if s.store.supports_cas:  # a mix: one stale expectation, one good, one new key
        stale = s.store.put_many([(a, b"lost", 0, False), (b, b"b2", 1, False), (c, b"c1", 0, False)])
        require(stale == [a], f"only the stale write should be reported, got {stale!r}")
        require(_value(s, a) == b"a1", "a stale write in a batch must leave its key unchanged")
        require(_value(s, b) == b"b2" and _value(s, c) == b"c1", "the other writes of the batch must land")
        require(s.store.put_many([(absent, b"x", 3, False)]) == [absent] and s.store.get(absent) is None,
                "a batched write expecting a version of an absent key must be refused and create nothing")
    else:
        require(s.store.put_many([(b, b"b2", 1, False), (c, b"c1", 0, False)]) == [], "writes must land")
        require(_value(s, b) == b"b2" and _value(s, c) == b"c1", "the writes of the batch must land")


CHECKS: dict[str, Callable[[Subject], None]] = {
    f.__name__: f for f in (
        missing_key_reads_as_none, put_get_delete, stale_write_is_refused, racing_writers_lose_no_update,
        reads_are_never_torn, keys_are_independent, unicode_keys, large_values, finished_values_expire,
        batches_act_as_single_keys,
    )
}


def _with_part_checks() -> None:
    from pulsarflow.storage.contract_parts import PART_CHECKS

    CHECKS.update(PART_CHECKS)


_with_part_checks()


def run_check(name: str, subject: Subject) -> Outcome:
    """Run one check and clean up its keys; exceptions become a failed outcome."""
    try:
        CHECKS[name](subject)
        return Outcome(name, PASSED)
    except NotApplicable as exc:
        return Outcome(name, NOT_APPLICABLE, str(exc))
    except Exception as exc:
        return Outcome(name, FAILED, "".join(traceback.format_exception_only(type(exc), exc)).strip())
    finally:
        try:
            subject.cleanup()
        except Exception as exc:  # a broken store already shows in the outcome
            log.warning("cleanup after %s failed: %s", name, exc)


def run_all(subject: Subject) -> list[Outcome]:
    return [run_check(name, subject) for name in CHECKS]
