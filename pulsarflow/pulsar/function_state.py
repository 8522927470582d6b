"""Pulsar Function state (BookKeeper table service) behind the StateStore port.

The Python Functions API stores ``str`` values, so each value is kept as
``"<version>:<base64 of the bytes>"``. Function state has no compare-and-set: this
store relies on one writer per key (engine inputs are consumed with Key_Shared and
``retainKeyOrdering``), so ``supports_cas`` is False and the expected version is only
used to number writes. Deleting writes an empty value (``del_counter`` is not usable).

The table service refuses a value of more than about 1 MiB (measured on 4.0.8: 1,040,000
characters are stored, 1,100,000 fail after the client's 60 s deadline), and base64 adds a
third. Values over ``CHUNK_BYTES`` are therefore split: the key holds
``"<version>*<chunk count>"`` and the chunks live under
``<key>\\0<version parity>\\0<index>``, each ``"<version>:<base64>"``. Chunks are written
before the header, and a reader that finds a chunk of another version (the writer moved
on meanwhile) reads again, so a reader never sees a mix of two writes. ``delete`` clears
the chunks of the current value; those of an earlier large value stay until the slot is
reused or the function is deleted.

Parts (``PartStore``) are values of their own under ``<key>\x1fh<name>`` (names are
``<epoch>.<index>``, so the key of a part has a shape no state may take:
``storage.is_part_key``), each written like any value (a large one in chunks). With no
transaction across keys, ``put_parts`` writes the parts first, then the value that names
them, then clears the dropped ones: a crash in between leaves the old value and an unnamed
part (overwritten by the next write of that name) or a dropped part not yet cleared.
``delete`` cannot list a key's parts and leaves them, like the chunks of earlier large
values.

What it cannot do (reported as "not applicable" by the contract checks): detect a stale
write (no compare-and-set), and expire finished values (the table service has no TTL),
so ``retention_ms`` is always None and ``finished`` is ignored; finished workflows stay
until the function is deleted.
"""

from __future__ import annotations

import base64
import concurrent.futures
from collections.abc import Mapping, Sequence
from typing import Any

from pulsarflow.errors import BackendError
from pulsarflow.storage import PART_KEY_MARK, Parts, PartWrite, Versioned

PARALLEL_CALLS = 16  # state calls in flight at once for a batch (they wait on the table service)
CHUNK_BYTES = 512 * 1024  # about 700,000 base64 characters per state value
READ_ATTEMPTS = 5


class FunctionStateStore:
    supports_cas = False
    retention_ms: int | None = None

    def __init__(self, context: Any, prefix: str = "") -> None:
        self.context = context
        self.prefix = prefix
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None

    def get(self, key: str) -> Versioned | None:
        for _ in range(READ_ATTEMPTS):
            header = self._read(key, self.prefix + key)
            if not header:
                return None
            version, sep, body = _split(header)
            if sep == ":":
                return Versioned(base64.b64decode(body), version)
            parts = [_split(self._read(key, _chunk_key(self.prefix + key, version, i))) for i in range(int(body))]
            if all(v == version for v, _, _ in parts):
                return Versioned(b"".join(base64.b64decode(p) for _, _, p in parts), version)
        raise BackendError(f"function state of {key!r} kept changing while being read ({READ_ATTEMPTS} attempts)")

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int:
        version, full_key = expected_version + 1, self.prefix + key
        if len(value) <= CHUNK_BYTES:
            self._write(key, full_key, f"{version}:{base64.b64encode(value).decode()}")
            return version
        chunks = [value[i:i + CHUNK_BYTES] for i in range(0, len(value), CHUNK_BYTES)]
        for i, chunk in enumerate(chunks):
            self._write(key, _chunk_key(full_key, version, i), f"{version}:{base64.b64encode(chunk).decode()}")
        self._write(key, full_key, f"{version}*{len(chunks)}")
        return version

    def get_many(self, keys: list[str]) -> dict[str, Versioned]:
        """Every key's value, the reads overlapping (each is a gRPC call to the table service)."""
        found = dict(zip(keys, self._pool().map(self.get, keys), strict=True))
        return {key: value for key, value in found.items() if value is not None}

    def put_many(self, writes: list[tuple[str, bytes, int, bool]]) -> list[str]:
        """The writes, overlapping; one writer per key means no conflict is ever reported."""
        list(self._pool().map(lambda w: self.put(*w), writes))
        return []

    def put_parts(self, key: str, value: bytes, expected_version: int, parts: Parts,
                  finished: bool = False) -> int:
        """The parts, then the value naming them, then the dropped parts cleared (one writer per key)."""
        for name, data in parts.write:
            self.put(part_key(key, name), data, 0)
        version = self.put(key, value, expected_version, finished)
        for name in parts.drop:
            self.delete(part_key(key, name))
        return version

    def put_parts_many(self, writes: list[PartWrite]) -> list[str]:
        list(self._pool().map(lambda w: self.put_parts(w[0], w[1], w[2], w[4], w[3]), writes))
        return []

    def get_parts(self, wanted: Mapping[str, Sequence[str]]) -> dict[str, dict[str, bytes]]:
        """Every named part of every key, the reads overlapping."""
        asked = [(key, name) for key, names in wanted.items() for name in names]
        values = self._pool().map(lambda kn: self.get(part_key(*kn)), asked) if asked else iter(())
        found: dict[str, dict[str, bytes]] = {key: {} for key in wanted}
        for (key, name), value in zip(asked, values, strict=True):
            if value is not None:
                found[key][name] = value.value
        return found

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._threads is None:
            self._threads = concurrent.futures.ThreadPoolExecutor(PARALLEL_CALLS, "pulsarflow-state")
        return self._threads

    def delete(self, key: str) -> None:
        header = self._read(key, self.prefix + key)
        self._write(key, self.prefix + key, "")
        version, sep, body = _split(header)
        for i in range(int(body) if sep == "*" else 0):
            self._write(key, _chunk_key(self.prefix + key, version, i), "")

    def _read(self, key: str, state_key: str) -> str:
        try:
            raw = self.context.get_state(state_key)
        except Exception as exc:
            raise BackendError(f"function state read of {key!r} failed: {_short(exc)}") from exc
        if not raw:
            return ""
        return raw.decode() if isinstance(raw, (bytes, bytearray)) else str(raw)

    def _write(self, key: str, state_key: str, text: str) -> None:
        try:
            self.context.put_state(state_key, text)
        except Exception as exc:
            raise BackendError(f"function state write of {key!r} failed ({len(text)} characters): "
                               f"{_short(exc)}") from exc


def _split(text: str) -> tuple[int, str, str]:
    """``"<version>:<base64>"`` or ``"<version>*<chunks>"`` into (version, separator, rest); -1 when empty."""
    if not text:
        return -1, "", ""
    cut = min((i for i in (text.find(":"), text.find("*")) if i >= 0), default=-1)
    if cut < 0:
        raise BackendError(f"function state holds {text[:40]!r}, which is not pulsarflow's layout")
    return int(text[:cut]), text[cut], text[cut + 1:]


def _short(exc: Exception) -> str:
    """The cause, without the (possibly MiB long) value the state client puts in its messages."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:300] + "..."


def part_key(key: str, name: str) -> str:
    """The key of part ``name`` of ``key``'s value."""
    return f"{key}{PART_KEY_MARK}{name}"


def _chunk_key(state_key: str, version: int, index: int) -> str:
    # Two alternating slots: a new write never overwrites the chunks of the value it replaces.
    return f"{state_key}\0{version % 2}\0{index}"


class ContextCounters:
    """A Pulsar Function's own counters (``context.incr_counter`` / ``get_counter``)."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def incr(self, key: str, amount: int) -> None:
        self._call(key, self.context.incr_counter, key, amount)

    def get(self, key: str) -> int:
        return int(self._call(key, self.context.get_counter, key) or 0)

    @staticmethod
    def _call(key: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # gRPC errors of the table service: an outage, retried later
            raise BackendError(f"function state counter {key!r} failed: {type(exc).__name__}: {exc}") from exc
