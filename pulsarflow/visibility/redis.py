"""A visibility store in Redis: shared by every dashboard and CLI of a deployment.

Keys (all under ``prefix``, default ``pulsarflow:visibility``)::

    {p}:wf:{id}          the summary, as JSON
    {p}:ev:{id}          the history: a list of Avro-encoded events, in the order applied
    {p}:ids:{id}         the set of applied event ids (duplicates are dropped)
    {p}:idx:all          sorted set of workflow ids, scored by start time
    {p}:idx:name:{n}     the same, per workflow name; :status:{s} per status; :tag:{t} per tag

Applying an event is one optimistic transaction (WATCH the summary, MULTI/EXEC), retried
when another writer changed the same workflow meanwhile. Searches walk the most
selective index newest first and filter the rest with the same ``matches`` as every backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from pulsarflow.codec import Codec
from pulsarflow.errors import BackendError
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.visibility.backend import translated
from pulsarflow.visibility.model import (
    Page,
    Query,
    WorkflowSummary,
    decode_cursor,
    fold,
    matches,
    page_of,
    summary_from_json,
    summary_to_json,
)

try:
    import redis
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Redis visibility store needs redis-py: pip install 'pulsarflow[redis]'") from exc

SCAN_CHUNK = 200
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.ResponseError)
MAX_TRANSACTION_RETRIES = 50


class RedisVisibilityStore:
    def __init__(self, url: str = "redis://127.0.0.1:6379/0", prefix: str = "pulsarflow:visibility",
                 codec: Codec | None = None, client: Any = None) -> None:
        self.url = url
        self.prefix = prefix
        self.codec = codec or Codec()
        self.redis: Any = client or redis.Redis.from_url(url)

    def apply(self, events: Sequence[WorkflowEvent]) -> int:
        return sum(self._apply_one(event) for event in events)

    def _apply_one(self, event: WorkflowEvent) -> int:
        wid = event.workflow_id
        with self._translated("apply an event"), self.redis.pipeline() as pipe:
            for _ in range(MAX_TRANSACTION_RETRIES):
                try:
                    pipe.watch(self._key("wf", wid), self._key("ids", wid))
                    if pipe.sismember(self._key("ids", wid), event.event_id):
                        pipe.unwatch()
                        return 0
                    raw = pipe.get(self._key("wf", wid))
                    old = summary_from_json(raw) if raw is not None else None
                    new = fold(old, event)
                    pipe.multi()
                    pipe.sadd(self._key("ids", wid), event.event_id)
                    pipe.rpush(self._key("ev", wid), self.codec.encode(event))
                    pipe.set(self._key("wf", wid), summary_to_json(new))
                    self._reindex(pipe, old, new)
                    pipe.execute()
                    return 1
                except redis.WatchError:
                    continue
        raise BackendError(f"workflow {wid!r} kept changing under {MAX_TRANSACTION_RETRIES} attempts to apply "
                           f"event {event.event_id!r} in {self.url}")

    def _reindex(self, pipe: Any, old: WorkflowSummary | None, new: WorkflowSummary) -> None:
        score, wid = new.started_at_ms or 0, new.workflow_id
        stale = set(_index_keys(self, old)) - set(_index_keys(self, new)) if old is not None else set()
        for key in stale:
            pipe.zrem(key, wid)
        for key in _index_keys(self, new):
            pipe.zadd(key, {wid: score})

    def get(self, workflow_id: str) -> WorkflowSummary | None:
        with self._translated("read a workflow"):
            raw = self.redis.get(self._key("wf", workflow_id))
        return None if raw is None else summary_from_json(raw)

    def history(self, workflow_id: str) -> list[WorkflowEvent]:
        with self._translated("read a history"):
            raws = self.redis.lrange(self._key("ev", workflow_id), 0, -1)
        events = [self.codec.decode(WorkflowEvent, bytes(raw)) for raw in raws]
        return sorted(events, key=lambda e: e.at_ms)

    def search(self, query: Query) -> Page:
        found: list[WorkflowSummary] = []
        with self._translated("search"):
            for chunk in self._walk(self._index_for(query), query.cursor):
                raws = self.redis.mget([self._key("wf", wid) for wid in chunk])
                found += [s for raw in raws if raw is not None and matches(s := summary_from_json(raw), query)]
                if len(found) > query.limit:
                    break
        return page_of(found[:query.limit + 1], query.limit)

    def _walk(self, index: str, cursor: str | None) -> Iterator[list[str]]:
        """Workflow ids of an index, newest first, strictly after the cursor, in chunks."""
        top: float | str = "+inf"
        skip_until: str | None = None
        if cursor is not None:
            started, skip_until = decode_cursor(cursor)
            top = started
        offset = 0
        while True:
            rows = self.redis.zrevrangebyscore(index, top, "-inf", start=offset, num=SCAN_CHUNK, withscores=True)
            if not rows:
                return
            offset += len(rows)
            chunk = [m.decode() for m, score in rows
                     if skip_until is None or score < top or m.decode() < skip_until]
            if chunk:
                yield chunk

    def _index_for(self, query: Query) -> str:
        if query.tag is not None:
            return self._key("idx", "tag", query.tag)
        if query.name is not None:
            return self._key("idx", "name", query.name)
        if query.status is not None:
            return self._key("idx", "status", query.status)
        return self._key("idx", "all")

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def close(self) -> None:
        self.redis.close()

    def _translated(self, what: str) -> AbstractContextManager[None]:
        return translated(REDIS_ERRORS, f"Redis visibility store {self.url} could not {what}")


def _index_keys(store: RedisVisibilityStore, summary: WorkflowSummary | None) -> list[str]:
    if summary is None:
        return []
    keys = [store._key("idx", "all")]
    if summary.workflow_name:
        keys.append(store._key("idx", "name", summary.workflow_name))
    if summary.status:
        keys.append(store._key("idx", "status", summary.status))
    keys += [store._key("idx", "tag", tag) for tag in summary.tags]
    return keys
