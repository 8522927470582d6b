"""The workflows in flight: which ids may be running, and their stored histories.

A state store answers ``get(key)`` but none promises to list its keys, and Pulsar
function state cannot: the admin REST API reads one key at a time
(``GET /admin/v3/functions/{tenant}/{namespace}/{name}/state/{key}``) and Pulsar 4.0 has
no call that lists a function's keys. So the ids come from an index:

- :class:`EventsTopicIndex` reads the app's events topic from its first message. The
  handler publishes a workflow's events before it saves the state that follows them, so
  every stored workflow has its ``WorkflowStarted`` on the topic (the deploy tool keeps
  that topic forever). Ids whose latest status event says closed are left out; any other
  id, and the key of an event that does not decode, is a candidate.
- :class:`RedisKeyIndex` scans the workflow engine's keys (``state: redis``).
- :class:`ListedIndex` takes the ids given (tests, the embedded runtime).

The stored state decides: only a state whose status is RUNNING (blocked runs included)
is replayed. A sample takes the candidates in the order of a hash of their id, so the
same runs are picked every time and they are spread over the whole id space.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pulsarflow.codec import Codec
from pulsarflow.errors import BackendError, DecodeError
from pulsarflow.messages import WorkflowState
from pulsarflow.messages import client as status
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.runtime.history import whole_state
from pulsarflow.storage import StateStore, Versioned

CLOSED = (status.COMPLETED, status.FAILED, status.CANCELLED)
PAGE = 200  # states read together
EVENTS_READ_TIMEOUT_S = 600.0


class WorkflowIndex(Protocol):
    """Ids of the workflows that may be running: every running one, and maybe some that are not."""

    where: str

    def workflow_ids(self) -> Iterable[str]: ...


@dataclass(frozen=True)
class ListedIndex:
    ids: tuple[str, ...]
    where: str = "the ids given"

    def workflow_ids(self) -> Iterable[str]:
        return self.ids


class EventsTopicIndex:
    """The ids of an events topic whose latest status is not closed (read from the first message)."""

    def __init__(self, client: Any, topic: str, codec: Codec | None = None,
                 max_seconds: float = EVENTS_READ_TIMEOUT_S) -> None:
        self.client, self.topic, self.codec, self.max_seconds = client, topic, codec or Codec(), max_seconds
        self.where = f"the events of {topic}"
        self.events_read = 0

    def workflow_ids(self) -> list[str]:
        latest: dict[str, tuple[int, str | None]] = {}
        for key, payload in self._messages():
            self.events_read += 1
            try:
                event = self.codec.decode(WorkflowEvent, payload)
            except DecodeError:
                latest.setdefault(key, (0, None))  # cannot tell: the stored state will
                continue
            at, known = latest.get(event.workflow_id, (0, None))
            if event.status is not None and event.at_ms >= at:
                at, known = event.at_ms, event.status
            latest[event.workflow_id] = (at, known)
        return [wid for wid, (_, known) in latest.items() if wid and known not in CLOSED]

    def _messages(self) -> Iterator[tuple[str, bytes]]:
        import pulsar

        try:
            reader = self.client.create_reader(self.topic, pulsar.MessageId.earliest)
        except Exception as exc:
            raise BackendError(f"cannot read {self.topic}: {type(exc).__name__}: {exc}") from exc
        deadline = time.monotonic() + self.max_seconds
        try:
            while reader.has_message_available():
                if time.monotonic() > deadline:
                    raise BackendError(f"reading {self.topic} took over {self.max_seconds:.0f}s "
                                       f"({self.events_read} events); the running workflows are not all known")
                message = reader.read_next(timeout_millis=10_000)
                yield message.partition_key(), message.data()
        finally:
            reader.close()


class RedisKeyIndex:
    """Every workflow id that has a state under a Redis key prefix (closed ones until they expire)."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client, self.prefix = client, prefix
        self.where = "the Redis keys " + prefix + "*"

    def workflow_ids(self) -> list[str]:
        pattern = _glob_escape(self.prefix) + "*"
        try:
            keys = list(self.client.scan_iter(match=pattern, count=1000))
        except Exception as exc:
            raise BackendError(f"cannot scan {self.where}: {type(exc).__name__}: {exc}") from exc
        texts = (k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in keys)
        return [t[len(self.prefix):] for t in texts]


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


@dataclass
class LiveRuns:
    """What :func:`collect` found: running histories, and the runs it could not read."""

    where: str
    candidates: int = 0
    sample: int | None = None
    states: list[WorkflowState] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (workflow id, why)
    notes: list[str] = field(default_factory=list)


def sample_order(workflow_id: str) -> str:
    return hashlib.sha256(workflow_id.encode("utf-8", "surrogatepass")).hexdigest()


def collect(index: WorkflowIndex, store: StateStore, codec: Codec | None = None,
            sample: int | None = None) -> LiveRuns:
    """The stored histories of the running workflows of ``index`` (the first ``sample`` in hash order)."""
    codec = codec or Codec()
    ids = sorted(set(index.workflow_ids()), key=sample_order)
    runs = LiveRuns(index.where, len(ids), sample)
    for start in range(0, len(ids), PAGE):
        page = ids[start:start + PAGE]
        found = _read_page(runs, store, page)
        for workflow_id in page:
            stored = found.get(workflow_id)
            if stored is not None:
                _add(runs, workflow_id, stored, codec, store)
            if sample is not None and len(runs.states) + len(runs.unreadable) >= sample:
                return runs
    return runs


def _add(runs: LiveRuns, workflow_id: str, stored: Versioned, codec: Codec, store: StateStore) -> None:
    try:
        head = codec.decode(WorkflowState, stored.value)
        if head.status == status.RUNNING:  # its history chunks, only for the runs replayed
            runs.states.append(whole_state(store, codec, workflow_id, stored))
    except (DecodeError, BackendError) as exc:
        runs.unreadable.append((workflow_id, str(exc)))


def _read_page(runs: LiveRuns, store: StateStore, keys: list[str]) -> dict[str, Versioned]:
    """The page's states; when reading them together fails, one by one, a failing key reported."""
    try:
        return read_many(store, keys)
    except BackendError:
        found: dict[str, Versioned] = {}
        for key in keys:
            try:
                value = store.get(key)
            except BackendError as exc:
                runs.unreadable.append((key, str(exc)))
                continue
            if value is not None:
                found[key] = value
        return found


def read_many(store: StateStore, keys: list[str]) -> dict[str, Versioned]:
    many = getattr(store, "get_many", None)
    if many is not None:
        return dict(many(keys))
    found = {key: store.get(key) for key in keys}
    return {key: value for key, value in found.items() if value is not None}
