"""One contract for every VisibilityStore backend: memory, SQLite, Redis (marker ``redis``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pulsarflow.errors import BackendError, ErrorInfo, SearchError
from pulsarflow.messages import events as ev
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.visibility import VisibilityStore
from pulsarflow.visibility.memory import InMemoryVisibilityStore
from pulsarflow.visibility.model import Query
from pulsarflow.visibility.sqlite import SqliteVisibilityStore

T0 = 1_767_225_600_000


def _redis_store() -> VisibilityStore:
    from pulsarflow.visibility.redis import RedisVisibilityStore
    from tests.redis.support import require_redis, unique_prefix

    return RedisVisibilityStore(require_redis(), prefix=unique_prefix("visibility").rstrip(":"))


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VisibilityStore]:
    makers: dict[str, Callable[[], VisibilityStore]] = {
        "memory": InMemoryVisibilityStore,
        "sqlite": lambda: SqliteVisibilityStore(tmp_path / "visibility.db"),
        "redis": _redis_store,
    }
    subject = makers[request.param]()
    yield subject
    if request.param == "redis":
        keys = subject.redis.keys(f"{subject.prefix}:*")  # type: ignore[attr-defined]
        if keys:
            subject.redis.delete(*keys)  # type: ignore[attr-defined]
    subject.close()


def event(wid: str, type_: str, at: int, n: int = 0, **fields: object) -> WorkflowEvent:
    return WorkflowEvent(event_id=f"{wid}/{type_}/{at}/{n}", type=type_, workflow_id=wid, at_ms=T0 + at,
                         **fields)  # type: ignore[arg-type]


def run(wid: str, name: str, start: int, end: int | None = None, status: str = "COMPLETED",
        tags: tuple[str, ...] | None = None) -> list[WorkflowEvent]:
    events = [event(wid, ev.WORKFLOW_STARTED, start, workflow_name=name, status="RUNNING", tags=tags,
                    data=b"[1]")]
    if end is not None:
        closing = {"COMPLETED": ev.WORKFLOW_COMPLETED, "FAILED": ev.WORKFLOW_FAILED}[status]
        error = ErrorInfo("ValueError", "boom", traceback="Traceback ...") if status == "FAILED" else None
        events.append(event(wid, closing, end, workflow_name=name, status=status, error=error,
                            data=b'"ok"' if status == "COMPLETED" else None))
    return events


def ids(store: VisibilityStore, **query: object) -> list[str]:
    return [s.workflow_id for s in store.search(Query(**query)).items]  # type: ignore[arg-type]


def test_unknown_workflow_reads_as_none_and_empty(store: VisibilityStore) -> None:
    assert store.get("absent") is None
    assert store.history("absent") == []
    assert store.search(Query()).items == []


def test_apply_folds_a_summary(store: VisibilityStore) -> None:
    assert store.apply(run("w1", "order", 0, 500, "FAILED", tags=("eu", "vip"))) == 2
    summary = store.get("w1")
    assert summary is not None
    assert (summary.workflow_name, summary.status, summary.tags) == ("order", "FAILED", ("eu", "vip"))
    assert (summary.started_at_ms, summary.closed_at_ms, summary.events) == (T0, T0 + 500, 2)
    assert summary.error is not None and summary.error.traceback == "Traceback ..."


def test_apply_is_idempotent(store: VisibilityStore) -> None:
    events = run("w1", "order", 0, 10)
    assert store.apply(events) == 2
    assert store.apply(events) == 0
    assert store.apply(events[:1]) == 0
    summary = store.get("w1")
    assert summary is not None and summary.events == 2 and summary.status == "COMPLETED"
    assert len(store.history("w1")) == 2


def test_history_is_ordered_by_time_then_by_arrival(store: VisibilityStore) -> None:
    late = event("w1", ev.TASK_STARTED, 30, name="charge", attempt=1)
    store.apply([event("w1", ev.WORKFLOW_STARTED, 0, workflow_name="order", status="RUNNING"),
                 event("w1", ev.TASK_DISPATCHED, 10, 1, position=0, name="charge"),
                 event("w1", ev.TASK_COMPLETED, 50, position=0, data=b"1")])
    store.apply([late, event("w1", ev.TIMER_SET, 10, 2, position=1, due_at_ms=T0 + 99)])
    history = store.history("w1")
    assert [e.type for e in history] == [ev.WORKFLOW_STARTED, ev.TASK_DISPATCHED, ev.TIMER_SET,
                                         ev.TASK_STARTED, ev.TASK_COMPLETED]
    assert history[2].due_at_ms == T0 + 99 and history[3] == late


def test_search_filters(store: VisibilityStore) -> None:
    store.apply(run("a", "order", 100, 200, tags=("eu",)))
    store.apply(run("b", "order", 300, 900, "FAILED"))
    store.apply(run("c", "refund", 500, tags=("eu", "vip")))
    assert ids(store) == ["c", "b", "a"]
    assert ids(store, name="order") == ["b", "a"]
    assert ids(store, status="failed") == ["b"]
    assert ids(store, status="RUNNING") == ["c"]
    assert ids(store, tag="eu") == ["c", "a"]
    assert ids(store, tag="vip", name="order") == []
    assert ids(store, started_after=T0 + 300) == ["c", "b"]
    assert ids(store, started_before=T0 + 300) == ["a"]
    assert ids(store, ended_after=T0 + 200) == ["b", "a"]
    assert ids(store, ended_before=T0 + 900) == ["a"]
    assert ids(store, name="order", started_after=T0 + 100, ended_before=T0 + 1000) == ["b", "a"]


def test_status_and_tags_follow_later_events(store: VisibilityStore) -> None:
    store.apply(run("a", "order", 0, tags=("new",)))
    store.apply([event("a", ev.TAGS_CHANGED, 5, status="RUNNING", tags=("old",))])
    assert ids(store, tag="new") == [] and ids(store, tag="old") == ["a"]
    store.apply([event("a", ev.WORKFLOW_COMPLETED, 9, status="COMPLETED", data=b"1")])
    assert ids(store, status="RUNNING") == [] and ids(store, status="COMPLETED") == ["a"]
    store.apply([event("a", ev.WORKFLOW_RESTARTED, 20, status="RUNNING")])
    summary = store.get("a")
    assert summary is not None and summary.status == "RUNNING" and summary.closed_at_ms is None


def test_paging_yields_every_match_once(store: VisibilityStore) -> None:
    for i in range(23):
        store.apply(run(f"w{i:02d}", "order" if i % 3 else "other", start=(i // 4) * 10))  # ties in start time
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.search(Query(name="order", limit=4, cursor=cursor))
        seen += [s.workflow_id for s in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    expected = sorted((f"w{i:02d}" for i in range(23) if i % 3), key=lambda w: ((int(w[1:]) // 4) * 10, w),
                      reverse=True)
    assert seen == expected and pages == 4


def test_bad_queries_say_what_to_fix(store: VisibilityStore) -> None:
    with pytest.raises(SearchError, match="between 1 and 1000"):
        Query(limit=0)
    with pytest.raises(SearchError, match="next_cursor"):
        store.search(Query(cursor="not-a-cursor"))


def test_unicode_ids_and_large_payloads(store: VisibilityStore) -> None:
    payload = bytes(range(256)) * 4096
    wid = "wörkflow/日本/🚀"
    store.apply([event(wid, ev.WORKFLOW_STARTED, 0, workflow_name="名前", status="RUNNING", data=payload)])
    assert store.history(wid)[0].data == payload
    assert ids(store, name="名前") == [wid]


def test_concurrent_appliers_lose_no_event(store: VisibilityStore) -> None:
    store.apply(run("w", "order", 0))
    errors: list[BaseException] = []

    def apply_many(worker: int) -> None:
        try:
            for i in range(25):
                store.apply([event("w", ev.TASK_STARTED, 10 + i, worker, name="t", attempt=i + 1)])
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=apply_many, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    summary = store.get("w")
    assert summary is not None and summary.events == 101
    assert len(store.history("w")) == 101


def test_sqlite_store_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    first = SqliteVisibilityStore(path)
    first.apply(run("w", "order", 0, 10))
    first.close()
    again = SqliteVisibilityStore(path)
    assert again.get("w") is not None and len(again.history("w")) == 2
    assert again.apply(run("w", "order", 0, 10)) == 0


def test_sqlite_store_reports_an_unusable_path(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot open the SQLite visibility store"):
        SqliteVisibilityStore(tmp_path / "missing-dir" / "v.db")
