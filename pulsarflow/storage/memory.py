"""In-memory state storage: a dict guarded by a lock, with the same contract as the others."""

from __future__ import annotations

import threading

from pulsarflow.errors import StateConflictError
from pulsarflow.storage import Versioned


class InMemoryStateStore:
    supports_cas = True

    def __init__(self) -> None:
        self._data: dict[str, Versioned] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Versioned | None:
        return self._data.get(key)

    def put(self, key: str, value: bytes, expected_version: int) -> int:
        with self._lock:
            current = self._data.get(key)
            version = current.version if current else 0
            if version != expected_version:
                raise StateConflictError(
                    f"state {key!r} is at version {version}, the write expected {expected_version}")
            self._data[key] = Versioned(bytes(value), version + 1)
            return version + 1

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)
