"""Shared by the storage backends: backend errors translated at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pulsarflow.errors import BackendError


@contextmanager
def translated(errors: tuple[type[BaseException], ...], message: str) -> Iterator[None]:
    """Re-raise ``errors`` as BackendError(message: cause), chained."""
    try:
        yield
    except errors as exc:
        raise BackendError(f"{message}: {exc}") from exc
