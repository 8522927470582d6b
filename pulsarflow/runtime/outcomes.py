"""Outcome markers: an executor remembers the attempts it completed, so a redelivery is not run again.

Delivery is at-least-once: an ``ExecuteTask`` whose acknowledgement the broker had not yet
made durable (a broker killed with -9, an executor killed before its grouped acks went
out) comes back, and without markers its task runs again. With markers the executor
records, for each attempt it completed, the messages it published about it (the
``TaskCompleted``, ``RetryTask`` or ``TaskFailed``, encoded as sent), and on a redelivery
of that very attempt it publishes them again instead of running the task. The workflow
engine drops the duplicate outcome as it drops any duplicate.

Order keeps at-least-once intact:

1. the executor decides the outcome and the handler sends it (``completed``, then ``sent``
   as the transport sees the bytes go out);
2. only after a flush the broker acknowledged are the markers of what it carried written
   (``flushed``); a flush that fails drops them. A marker therefore always describes an
   outcome the broker holds; a missing marker only means the task runs again.

Markers are written by a background thread, so a task does not wait for the store; a
marker lost in a crash costs one re-run, never a lost outcome. The executor's transport
flushes an outcome soon after it is sent (``WatchedTransport``, at most every
``EAGER_FLUSH_MS``) rather than at the end of its batch, so the tasks done early in a
batch get their markers before the batch ends. Store failures are logged,
and for ``OUTAGE_PAUSE_S`` the store is not asked again (tasks run as without markers).

When it reads the store (a read costs about 1 to 3 ms on function state, 0.1 ms on Redis,
so not for every task): each process first looks in its own memory of its last ``MEMORY``
outcomes, which answers every redelivery to the process that ran the task. The store is
read only for a message that the process may not have seen: one dispatched (its
``first_attempt_at_ms``, by the workflow engine's clock) before the process started, or
within ``check_after_ms`` (1 s) after, and at least ``check_after_ms`` ago. That is every
message redelivered to a restarted executor (after a broker crash that took the executors
along, after a killed executor's restart) and to a new one; a backlog that built up while
the process ran costs no read. What is not covered: a redelivery to another executor
instance that was already running (several instances, and one died, or a broker crash
they all survived) runs again, as without markers; ``outcome_lookups: always`` reads the
store for every message at least ``check_after_ms`` old.

Stores (built from a function's config by ``pulsarflow.storage.outcomes.outcome_store_from_config``,
so the runtime imports no backend), none of which grows without bound:

- Pulsar function state: the executor function's own table (shared by its instances),
  ``outcome_slots`` keys (65,536 by default) chosen by a hash of the task id; a later task
  of the same slot overwrites an earlier marker (the marker names its task, so a
  collision is never misread: the overwritten task would run again);
- Redis: one key per task id with an expiry (``outcome_ttl_ms``, one hour by default);
- memory: the last ``MEMORY`` markers (embedded runs and tests).

An outcome over ``MAX_MARKER_BYTES`` encoded (a large task result) gets no marker.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from pulsarflow.codec import Codec
from pulsarflow.engines.outgoing import Outgoing
from pulsarflow.messages import ExecuteTask, WorkflowEngineMessage

log = logging.getLogger("pulsarflow.executor")

LAYOUT = 1  # the marker layout version (a reader skips a marker of another layout)
MAX_MARKER_BYTES = 4096
MEMORY = 10_000  # markers each executor process keeps in memory
CHECK_AFTER_MS = 1_000
OUTAGE_PAUSE_S = 5.0
DEFAULT_SLOTS = 65_536
DEFAULT_TTL_MS = 3_600_000
EAGER_FLUSH_MS = 100  # an outcome sent this long after the last flush is flushed at once
PENDING_WRITES = 10_000  # markers waiting for the writer thread; beyond that they are dropped


@dataclass(frozen=True, slots=True)
class Marker:
    """What one completed attempt published: (topic, key, encoded message, deliver_at_ms) each."""

    task_id: str
    attempt: int
    generation: int
    sent: tuple[tuple[str, str, bytes, int | None], ...]

    def encode(self) -> bytes:
        header = json.dumps({"layout": LAYOUT, "task": self.task_id, "attempt": self.attempt,
                             "generation": self.generation,
                             "sent": [[t, k, len(p), at] for t, k, p, at in self.sent]}).encode()
        return len(header).to_bytes(4, "big") + header + b"".join(p for _, _, p, _ in self.sent)

    @staticmethod
    def decode(raw: bytes) -> Marker | None:
        """The marker in ``raw``; None when it is not one this release reads."""
        try:
            size = int.from_bytes(raw[:4], "big")
            header = json.loads(raw[4:4 + size])
            if header.get("layout") != LAYOUT:
                return None
            offset, sent = 4 + size, []
            for topic, key, length, at in header["sent"]:
                sent.append((str(topic), str(key), bytes(raw[offset:offset + length]), at))
                offset += length
            return Marker(str(header["task"]), int(header["attempt"]), int(header["generation"]), tuple(sent))
        except (ValueError, KeyError, TypeError):
            return None

    def answers(self, task: ExecuteTask) -> bool:
        return (self.task_id, self.attempt, self.generation) == (task.task_id, task.attempt, task.generation)


class OutcomeStore(Protocol):
    """Where markers survive the executor's process. Contract: ``get`` of an unknown task id
    returns None (or another task's marker, which the caller recognises); ``put_many``
    overwrites; either raises on a backend failure. Neither grows without bound."""

    def get(self, task_id: str) -> bytes | None: ...

    def put_many(self, markers: list[tuple[str, bytes]]) -> None: ...


class MemoryOutcomeStore:
    def __init__(self, size: int = MEMORY) -> None:
        self.size = size
        self.markers: OrderedDict[str, bytes] = OrderedDict()

    def get(self, task_id: str) -> bytes | None:
        return self.markers.get(task_id)

    def put_many(self, markers: list[tuple[str, bytes]]) -> None:
        for task_id, raw in markers:
            self.markers[task_id] = raw
            self.markers.move_to_end(task_id)
        while len(self.markers) > self.size:
            self.markers.popitem(last=False)


class FunctionStateOutcomeStore:
    """The executor function's state table: a fixed number of slots, so it never grows past them."""

    def __init__(self, context: Any, slots: int = DEFAULT_SLOTS, parallel: int = 8) -> None:
        import concurrent.futures

        self.context = context
        self.slots = slots
        self._pool = concurrent.futures.ThreadPoolExecutor(parallel, "pulsarflow-outcomes")

    def slot(self, task_id: str) -> str:
        return f"outcome:{zlib.crc32(task_id.encode()) % self.slots}"

    def get(self, task_id: str) -> bytes | None:
        raw = self.context.get_state(self.slot(task_id))
        return base64.b64decode(raw) if raw else None

    def put_many(self, markers: list[tuple[str, bytes]]) -> None:
        def put(marker: tuple[str, bytes]) -> None:
            self.context.put_state(self.slot(marker[0]), base64.b64encode(marker[1]).decode())

        try:
            list(self._pool.map(put, markers))
        except RuntimeError:  # the pool takes no work once the interpreter shuts down: write them here
            for marker in markers:
                put(marker)


class RedisOutcomeStore:
    """One key per task id under the app's prefix, expiring ``ttl_ms`` after its write."""

    def __init__(self, client: Any, prefix: str, ttl_ms: int = DEFAULT_TTL_MS) -> None:
        self.client, self.prefix, self.ttl_ms = client, prefix, ttl_ms

    def get(self, task_id: str) -> bytes | None:
        value = self.client.get(self.prefix + task_id)
        return bytes(value) if value is not None else None

    def put_many(self, markers: list[tuple[str, bytes]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for task_id, raw in markers:
            pipe.set(self.prefix + task_id, raw, px=self.ttl_ms)
        pipe.execute()


class Outcomes:
    """The executor's markers: looked up before an attempt runs, written once its outcome was flushed."""

    def __init__(self, store: OutcomeStore, codec: Codec | None = None, check_after_ms: int = CHECK_AFTER_MS,
                 background: bool = True, started_ms: int | None = None, always: bool = False) -> None:
        self.store = store
        self.codec = codec or Codec()
        self.check_after_ms = check_after_ms
        # Messages dispatched after this may be looked up in memory alone (None: always read the store).
        self.unseen_before_ms = None if always else (
            (started_ms if started_ms is not None else int(time.time() * 1000)) + check_after_ms)
        self.memory: OrderedDict[str, Marker] = OrderedDict()
        self._unsent: dict[bytes, Marker] = {}  # by the bytes of its first message, until the transport sends them
        self._sent: list[Marker] = []  # sent, waiting for a flush
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._writes: queue.Queue[Marker] | None = queue.Queue(PENDING_WRITES) if background else None
        self.dropped = 0
        self.written = 0
        log.info("outcome markers in %s (read for messages dispatched %d ms ago or more%s)",
                 type(store).__name__, check_after_ms, "" if always else ", and before this process started")
        if self._writes is not None:
            threading.Thread(target=self._write_forever, name="pulsarflow-outcomes", daemon=True).start()

    # -- before an attempt ----------------------------------------------------------------

    def recorded(self, task: ExecuteTask, now_ms: int) -> list[Outgoing] | None:
        """What this attempt already published (publish it again), [] for an attempt already
        superseded by a later one, None when it must run."""
        marker = self.memory.get(task.task_id)
        if marker is None and self._may_be_unseen(task, now_ms):
            marker = self._read(task.task_id)
        if marker is None or marker.task_id != task.task_id or marker.generation != task.generation:
            return None
        if marker.attempt > task.attempt:  # a later attempt ran, so this one's outcome was recorded
            return []
        if marker.attempt < task.attempt:
            return None
        try:
            return [Outgoing(topic, key, self.codec.decode(WorkflowEngineMessage, payload), at)
                    for topic, key, payload, at in marker.sent]
        except Exception as exc:  # written by another release: run the task, as without a marker
            log.warning("cannot read the recorded outcome of %s (%s); running it", task.task_id, exc)
            return None

    def _may_be_unseen(self, task: ExecuteTask, now_ms: int) -> bool:
        """Whether another process may have run this attempt: a marker can only exist for a
        message some executor handled before, and this process's own are in its memory."""
        dispatched = task.first_attempt_at_ms
        if now_ms - dispatched < self.check_after_ms:
            return False
        return self.unseen_before_ms is None or dispatched < self.unseen_before_ms

    def _read(self, task_id: str) -> Marker | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            raw = self.store.get(task_id)
        except Exception as exc:
            self._pause("read", exc)
            return None
        return Marker.decode(raw) if raw else None

    # -- after an attempt -----------------------------------------------------------------

    def completed(self, task: ExecuteTask, outgoing: list[Outgoing]) -> None:
        """The attempt is over and ``outgoing`` is what it will publish: remembered once sent and flushed."""
        try:
            sent = tuple((o.topic, o.key, self.codec.encode(o.message), o.deliver_at_ms) for o in outgoing)
        except Exception:  # not encodable: the handler will refuse it, and no marker is due
            return
        marker = Marker(task.task_id, task.attempt, task.generation, sent)
        if not sent or sum(len(p) for _, _, p, _ in sent) + 256 > MAX_MARKER_BYTES:
            return
        with self._lock:
            self._unsent[sent[0][2]] = marker

    def sent(self, payload: bytes) -> bool:
        """The transport sent ``payload``; True when it is an outcome waiting for its marker."""
        with self._lock:
            marker = self._unsent.pop(payload, None) if self._unsent else None
            if marker is not None:
                self._sent.append(marker)
        return marker is not None

    def flushed(self) -> None:
        """Everything sent so far is acknowledged by the broker: its markers may be written."""
        with self._lock:
            ready, self._sent, self._unsent = self._sent, [], {}
        for marker in ready:
            self.memory[marker.task_id] = marker
            self.memory.move_to_end(marker.task_id)
            if len(self.memory) > MEMORY:
                self.memory.popitem(last=False)
        if self._writes is None:
            self._write(ready)
            return
        for marker in ready:
            try:
                self._writes.put_nowait(marker)
            except queue.Full:
                self.dropped += 1  # the store is slower than the tasks: those run again if redelivered

    def flush_failed(self) -> None:
        """A flush failed: what it carried may not be on the broker, so none of it gets a marker."""
        with self._lock:
            self._sent, self._unsent = [], {}

    def _write_forever(self) -> None:
        assert self._writes is not None
        while True:
            batch = [self._writes.get()]
            while len(batch) < 256:
                try:
                    batch.append(self._writes.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            finally:
                for _ in batch:
                    self._writes.task_done()

    def _write(self, markers: list[Marker]) -> None:
        if not markers or time.monotonic() < self._down_until:
            return
        try:
            self.store.put_many([(m.task_id, m.encode()) for m in markers])
        except Exception as exc:
            self._pause("write", exc)
            return
        if not self.written:
            log.info("outcome markers: the first %d written", len(markers))
        self.written += len(markers)

    def _pause(self, what: str, exc: Exception) -> None:
        self._down_until = time.monotonic() + OUTAGE_PAUSE_S
        log.warning("outcome markers: %s failed (%s: %s); tasks run without them for %.0f s",
                    what, type(exc).__name__, exc, OUTAGE_PAUSE_S)

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until the writer thread has written what was queued (for tests and a clean exit)."""
        deadline = time.monotonic() + timeout_s
        while self._writes is not None and self._writes.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


class WatchedTransport:
    """A transport that tells ``Outcomes`` what was sent and when a flush succeeded.

    It also flushes an outcome soon after it is sent (when ``eager_ms`` passed since the
    last flush), without waiting for the end of the batch: a batch of tasks takes as long
    as its tasks, and the outcomes of the tasks done early in it would otherwise get their
    markers only at its end, which a crash in the middle of the batch never reaches.
    """

    def __init__(self, inner: Any, outcomes: Outcomes, eager_ms: float = EAGER_FLUSH_MS) -> None:
        self.inner, self.outcomes = inner, outcomes
        self.eager_s = eager_ms / 1000
        self._flushed_at = time.monotonic()

    def send(self, topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        self.inner.send(topic, key, payload, deliver_at_ms)
        if self.outcomes.sent(payload) and time.monotonic() - self._flushed_at >= self.eager_s:
            self.flush()

    def flush(self) -> None:
        try:
            self.inner.flush()
        except BaseException:
            self.outcomes.flush_failed()
            raise
        self._flushed_at = time.monotonic()
        self.outcomes.flushed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
