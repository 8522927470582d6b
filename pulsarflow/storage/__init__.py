"""State storage: the port and its backends (in-memory here; Redis and Pulsar function state beside)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Versioned:
    """A stored value and its version (1 for the first write, +1 for each later one)."""

    value: bytes
    version: int


class StateStore(Protocol):
    """Keeps engine state as bytes under string keys.

    Contract (checked by tests/contract for every backend):
    - ``get`` of a missing key returns None, never raises for absence.
    - ``put(key, value, expected_version)`` writes atomically only if the stored version is
      ``expected_version`` (0 means "absent"); otherwise it raises StateConflictError and
      changes nothing. It returns the new version. Backends without compare-and-set
      (``supports_cas = False``) rely on one writer per key and ignore the check.
    - ``delete`` of a missing key is a no-op.
    - Keys may be any unicode string; values any bytes, large ones included.
    """

    supports_cas: bool

    def get(self, key: str) -> Versioned | None: ...

    def put(self, key: str, value: bytes, expected_version: int) -> int: ...

    def delete(self, key: str) -> None: ...
