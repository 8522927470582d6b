"""Pulsar Function state (BookKeeper table service) behind the StateStore port.

The Python Functions API stores ``str`` values, so each value is kept as
``"<version>:<base64 of the bytes>"``. Function state has no compare-and-set: this
store relies on one writer per key (engine inputs are consumed with Key_Shared and
``retainKeyOrdering``), so ``supports_cas`` is False and the expected version is only
used to number writes. Deleting writes an empty value (``del_counter`` is not usable).

What it cannot do (reported as "not applicable" by the contract checks): detect a stale
write (no compare-and-set), and expire finished values (the table service has no TTL),
so ``retention_ms`` is always None and ``finished`` is ignored; finished workflows stay
until the function is deleted.
"""

from __future__ import annotations

import base64
from typing import Any

from pulsarflow.errors import BackendError
from pulsarflow.storage import Versioned


class FunctionStateStore:
    supports_cas = False
    retention_ms: int | None = None

    def __init__(self, context: Any, prefix: str = "") -> None:
        self.context = context
        self.prefix = prefix

    def get(self, key: str) -> Versioned | None:
        try:
            raw = self.context.get_state(self.prefix + key)
        except Exception as exc:
            raise BackendError(f"function state read of {key!r} failed: {exc}") from exc
        if not raw:
            return None
        text = raw.decode() if isinstance(raw, (bytes, bytearray)) else str(raw)
        version, _, encoded = text.partition(":")
        return Versioned(base64.b64decode(encoded), int(version))

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int:
        version = expected_version + 1
        try:
            self.context.put_state(self.prefix + key, f"{version}:{base64.b64encode(value).decode()}")
        except Exception as exc:
            raise BackendError(f"function state write of {key!r} failed: {exc}") from exc
        return version

    def delete(self, key: str) -> None:
        try:
            self.context.put_state(self.prefix + key, "")
        except Exception as exc:
            raise BackendError(f"function state delete of {key!r} failed: {exc}") from exc
