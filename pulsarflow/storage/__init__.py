"""State storage: the port and its backends.

Backends: ``memory.InMemoryStateStore`` (embedded runtime and tests),
``redis.RedisStateStore`` (``pulsarflow[redis]``) and ``function_state.FunctionStateStore``
(Pulsar function state). ``contract`` holds the checks every backend must pass; see
docs/state.md.

Every backend also keeps *parts* (:class:`PartStore`): immutable byte strings stored beside
a key's value, written with it in one versioned write. The workflow engine keeps a run's
settled history in them (``runtime/history.py``), so a step writes what it adds, not the
whole history.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

STATE_BACKENDS = ("function", "redis")  # what ``state:`` in functions.yaml may name


@dataclass(frozen=True, slots=True)
class Versioned:
    """A stored value and its version (1 for the first write, +1 for each later one)."""

    value: bytes
    version: int


class StateStore(Protocol):
    """Keeps engine state as bytes under string keys.

    Contract (checked by ``pulsarflow.storage.contract`` for every backend):

    - ``get`` of a missing (or expired) key returns None; absence is never an error.
    - ``put(key, value, expected_version)`` writes only if the stored version is
      ``expected_version`` (0 means "absent") and returns the new version
      (``expected_version + 1``). On a mismatch it raises StateConflictError and changes
      nothing. Backends without compare-and-set (``supports_cas = False``) cannot detect
      a mismatch: they rely on one writer per key and number the write from
      ``expected_version``.
    - A write is atomic for its key: a reader sees the old value and version or the new
      ones, never a mix, and a refused write leaves no trace.
    - Nothing spans keys: writes to different keys are independent (no ordering or
      atomicity between them is promised). ``get_many`` and ``put_many`` only save round
      trips: ``get_many`` returns the keys that exist (absent ones are left out);
      ``put_many`` writes each ``(key, value, expected_version, finished)`` as ``put``
      would, each on its own, and returns the keys whose expected version was stale
      (those are unchanged; the others are written, whatever happened to the stale ones).
      :class:`BatchByKey` gives a store both as loops over ``get`` and ``put``.
    - ``put(..., finished=True)`` says the value belongs to something that is over (a
      completed workflow). A store with a ``retention_ms`` drops such a value that long
      after the write; a later ``put`` with ``finished=False`` keeps the key for good
      again. ``retention_ms = None`` keeps everything until ``delete``.
    - ``delete`` of a missing key is a no-op; after it the key reads as absent and its
      next write expects version 0.
    - Keys may be any unicode string; values any bytes, several MiB included.
    - Failures of the backend itself raise BackendError (the message can be retried).
    """

    supports_cas: bool
    retention_ms: int | None

    def get(self, key: str) -> Versioned | None: ...

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int: ...

    def delete(self, key: str) -> None: ...

    def get_many(self, keys: list[str]) -> dict[str, Versioned]: ...

    def put_many(self, writes: list[tuple[str, bytes, int, bool]]) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Parts:
    """What a versioned write does to the parts of its key: parts written, then parts dropped."""

    write: tuple[tuple[str, bytes], ...] = ()
    drop: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.write or self.drop)

    @property
    def nbytes(self) -> int:
        return sum(len(value) for _, value in self.write)


PartWrite = tuple[str, bytes, int, bool, Parts]  # key, value, expected version, finished, parts

# Function state keeps a part under "<key>\x1fh<name>": a key of that shape is reserved (refused as an id).
PART_KEY_MARK = "\x1fh"
_PART_KEY = re.compile(r"\x1fh\d+\.\d+(?:\x00|$)")


def is_part_key(key: str) -> bool:
    """Whether ``key`` has the shape of a part's key (``<key>\\x1fh<epoch>.<index>``), which no state may take."""
    return PART_KEY_MARK in key and _PART_KEY.search(key) is not None


class PartStore(StateStore, Protocol):
    """A StateStore that keeps parts beside a key's value.

    - ``put_parts`` is ``put`` that, when the write is accepted, also stores each part of
      ``parts.write`` under (key, name) and removes those named in ``parts.drop``. A
      refused write leaves the parts as they were. On a store with compare-and-set the
      whole write is atomic; function state (one writer per key) writes the parts first,
      then the value, then drops, so the value never names a part not yet written.
    - A part belongs to its key: it expires with the key's finished value, and ``delete``
      removes it (function state, which cannot list them, leaves them: docs/state.md).
      ``put`` without parts leaves the parts as they are.
    - ``get_parts({key: names})`` returns, for each key, the named parts that exist, in one
      round trip where the backend allows it; missing ones are left out.
    - ``put_parts_many`` is ``put_many`` with parts: the keys whose expected version was stale.
    """

    def put_parts(self, key: str, value: bytes, expected_version: int, parts: Parts,
                  finished: bool = False) -> int: ...

    def put_parts_many(self, writes: list[PartWrite]) -> list[str]: ...

    def get_parts(self, wanted: Mapping[str, Sequence[str]]) -> dict[str, dict[str, bytes]]: ...


def part_store(store: StateStore | None) -> PartStore | None:
    """``store`` when it keeps parts (every backend of pulsarflow does), else None (a store of one's own)."""
    return store if store is not None and callable(getattr(store, "put_parts", None)) else None  # type: ignore[return-value]


class BatchByKey:
    """``get_many`` and ``put_many`` of a StateStore as one ``get`` or ``put`` per key."""

    def get(self, key: str) -> Versioned | None:
        raise NotImplementedError

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int:
        raise NotImplementedError

    def get_many(self, keys: list[str]) -> dict[str, Versioned]:
        found = {key: self.get(key) for key in keys}
        return {key: value for key, value in found.items() if value is not None}

    def put_many(self, writes: list[tuple[str, bytes, int, bool]]) -> list[str]:
        from pulsarflow.errors import StateConflictError

        conflicts = []
        for key, value, version, finished in writes:
            try:
                self.put(key, value, version, finished=finished)
            except StateConflictError:
                conflicts.append(key)
        return conflicts


class PartsByKey(BatchByKey):
    """``put_parts_many`` of a PartStore as one ``put_parts`` per key (and BatchByKey's loops)."""

    def put_parts(self, key: str, value: bytes, expected_version: int, parts: Parts,
                  finished: bool = False) -> int:
        raise NotImplementedError

    def put_parts_many(self, writes: list[PartWrite]) -> list[str]:
        from pulsarflow.errors import StateConflictError

        conflicts = []
        for key, value, version, finished, parts in writes:
            try:
                self.put_parts(key, value, version, parts, finished=finished)
            except StateConflictError:
                conflicts.append(key)
        return conflicts


def check_retention(retention_ms: int | None) -> int | None:
    """Validate a configured retention: None (keep forever) or a positive number of milliseconds."""
    if retention_ms is None:
        return None
    from pulsarflow.errors import DefinitionError

    if isinstance(retention_ms, bool) or not isinstance(retention_ms, int) or retention_ms <= 0:
        raise DefinitionError(f"retention_ms must be a positive number of milliseconds (or unset to keep "
                              f"finished state forever), got {retention_ms!r}")
    return retention_ms
