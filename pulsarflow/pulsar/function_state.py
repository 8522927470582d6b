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

What it cannot do (reported as "not applicable" by the contract checks): detect a stale
write (no compare-and-set), and expire finished values (the table service has no TTL),
so ``retention_ms`` is always None and ``finished`` is ignored; finished workflows stay
until the function is deleted.
"""

from __future__ import annotations

import base64
import concurrent.futures
from typing import Any

from pulsarflow.errors import BackendError
from pulsarflow.storage import Versioned

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


def _chunk_key(state_key: str, version: int, index: int) -> str:
    # Two alternating slots: a new write never overwrites the chunks of the value it replaces.
    return f"{state_key}\0{version % 2}\0{index}"
