"""Opening a visibility store from a URL: ``memory:``, ``sqlite:///path/to/file.db``, ``redis://host:port/db``."""

from __future__ import annotations

from pathlib import Path

from pulsarflow.errors import SearchError
from pulsarflow.visibility import VisibilityStore

EXAMPLES = "memory:, sqlite:///var/lib/pulsarflow/visibility.db, redis://127.0.0.1:6379/0"


def open_store(url: str) -> VisibilityStore:
    if url in ("memory:", "memory://"):
        from pulsarflow.visibility.memory import InMemoryVisibilityStore

        return InMemoryVisibilityStore()
    if url.startswith("sqlite:"):
        from pulsarflow.visibility.sqlite import SqliteVisibilityStore

        path = Path(url.removeprefix("sqlite:").removeprefix("//")).expanduser()
        if not str(path) or str(path) == ".":
            raise SearchError(f"visibility store URL {url!r} names no file; e.g. sqlite:///tmp/visibility.db")
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteVisibilityStore(path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from pulsarflow.visibility.redis import RedisVisibilityStore

        return RedisVisibilityStore(url)
    raise SearchError(f"unknown visibility store URL {url!r}; use one of: {EXAMPLES}")
