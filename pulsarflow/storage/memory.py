"""In-memory state storage: a dict guarded by a lock, with the same contract as the others.

Expiry of finished values is checked against the given clock when a key is read, so a
``VirtualClock`` makes retention testable without waiting. A key's parts live in a dict
of their own beside its value, changed under the same lock (atomic with the value), and
go when the value expires or is deleted.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from pulsarflow.clock import Clock, SystemClock
from pulsarflow.errors import StateConflictError
from pulsarflow.storage import Parts, PartsByKey, Versioned, check_retention


class InMemoryStateStore(PartsByKey):
    supports_cas = True

    def __init__(self, retention_ms: int | None = None, clock: Clock | None = None) -> None:
        self.retention_ms = check_retention(retention_ms)
        self.clock = clock or SystemClock()
        self._data: dict[str, Versioned] = {}
        self._parts: dict[str, dict[str, bytes]] = {}
        self._expires_at: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Versioned | None:
        with self._lock:
            return self._live(key)

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int:
        return self.put_parts(key, value, expected_version, Parts(), finished=finished)

    def put_parts(self, key: str, value: bytes, expected_version: int, parts: Parts,
                  finished: bool = False) -> int:
        with self._lock:
            current = self._live(key)
            version = current.version if current else 0
            if version != expected_version:
                raise StateConflictError(
                    f"state {key!r} is at version {version}, the write expected {expected_version}")
            if parts.write or parts.drop:
                kept = self._parts.setdefault(key, {})
                kept.update((name, bytes(data)) for name, data in parts.write)
                for name in parts.drop:
                    kept.pop(name, None)
            self._data[key] = Versioned(bytes(value), version + 1)
            if finished and self.retention_ms is not None:
                self._expires_at[key] = self.clock.now_ms() + self.retention_ms
            else:
                self._expires_at.pop(key, None)
            return version + 1

    def get_parts(self, wanted: Mapping[str, Sequence[str]]) -> dict[str, dict[str, bytes]]:
        with self._lock:
            found: dict[str, dict[str, bytes]] = {}
            for key, names in wanted.items():
                kept = self._parts.get(key, {}) if self._live(key) is not None else {}
                found[key] = {name: kept[name] for name in names if name in kept}
            return found

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)
            self._parts.pop(key, None)
            self._expires_at.pop(key, None)

    def part_count(self, key: str) -> int:
        """How many parts ``key`` holds (for tests and benchmarks)."""
        with self._lock:
            return len(self._parts.get(key, {}))

    def __len__(self) -> int:
        with self._lock:
            return sum(self._live(key) is not None for key in list(self._data))

    def _live(self, key: str) -> Versioned | None:
        expires_at = self._expires_at.get(key)
        if expires_at is not None and self.clock.now_ms() >= expires_at:
            del self._data[key], self._expires_at[key]
            self._parts.pop(key, None)
        return self._data.get(key)
