"""State storage: the port and its backends.

Backends: ``memory.InMemoryStateStore`` (embedded runtime and tests),
``redis.RedisStateStore`` (``pulsarflow[redis]``) and ``function_state.FunctionStateStore``
(Pulsar function state). ``contract`` holds the checks every backend must pass; see
docs/state.md.
"""

from __future__ import annotations

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


def check_retention(retention_ms: int | None) -> int | None:
    """Validate a configured retention: None (keep forever) or a positive number of milliseconds."""
    if retention_ms is None:
        return None
    from pulsarflow.errors import DefinitionError

    if isinstance(retention_ms, bool) or not isinstance(retention_ms, int) or retention_ms <= 0:
        raise DefinitionError(f"retention_ms must be a positive number of milliseconds (or unset to keep "
                              f"finished state forever), got {retention_ms!r}")
    return retention_ms
