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
    - Nothing spans keys: there is no multi-key operation, and writes to different keys
      are independent (no ordering or atomicity between them is promised).
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


def check_retention(retention_ms: int | None) -> int | None:
    """Validate a configured retention: None (keep forever) or a positive number of milliseconds."""
    if retention_ms is None:
        return None
    from pulsarflow.errors import DefinitionError

    if isinstance(retention_ms, bool) or not isinstance(retention_ms, int) or retention_ms <= 0:
        raise DefinitionError(f"retention_ms must be a positive number of milliseconds (or unset to keep "
                              f"finished state forever), got {retention_ms!r}")
    return retention_ms
