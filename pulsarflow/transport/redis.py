"""A durable queue for the embedded runtime, on Redis: messages outlive the process.

Everything the engines send (ready messages, timers, task retries and their backoffs)
is kept in Redis until it is handled; the keys and scripts are in ``redis_scripts.py``.

One process at a time runs an app's queue: the *owner*, which holds a lease (the
``owner`` key's expiry, on Redis's own clock) that every poll and a background thread
renew. It takes up to ``prefetch`` messages per round trip, and each message it takes
is kept in ``processing`` until it is settled (``ack`` once handled, ``requeue`` after
an outage). When the owner dies, its lease runs out
(``lease_ms``) and the next process to poll takes the queue over: it first puts back,
at the head and in the order they were taken, the messages the dead owner had not
settled, so a takeover keeps every key's order; those messages are handled twice if the
owner had got part of the way (the engines are idempotent). A process that finds the
queue owned waits; its own sends go into the queue meanwhile.

Answers to the app's clients (``local_prefix``) stay in this process, as on Pulsar,
where client topics are non-persistent: they are not written to Redis. Acknowledgements
travel with the next round trip (a poll or a flush: within the loop, that is at once),
or are sent by the background thread when a handler runs long (``redis_keeper.py``);
``close()``, and the interpreter's exit, send what is left and release the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
import uuid
import weakref
from collections import deque
from typing import Any, NamedTuple

from pulsarflow.clock import Clock
from pulsarflow.errors import BackendError
from pulsarflow.redaction import redact
from pulsarflow.storage.redis import RedisStateStore
from pulsarflow.transport.queue import Delivered
from pulsarflow.transport.redis_keeper import Outbox, QueueKeeper, shut_down
from pulsarflow.transport.redis_scripts import QueueScripts

log = logging.getLogger("pulsarflow.transport.redis")

DEFAULT_LEASE_MS = 5_000  # how long a killed owner holds the queue up
DEFAULT_PREFETCH = 16  # messages taken per round trip (kept in order, handed out one by one)
STANDBY_RECHECK_MS = 500  # a waiting process looks again this often (sooner when the owner's lease ends sooner)
STANDBY_POLL_S = 0.05  # a waiting process on a virtual clock naps this long per poll, in real seconds
OUTAGE_DELAYS_MS = (200, 400, 800, 1_600, 3_200, 5_000)  # Redis unreachable: look again after these
_FRAME = struct.Struct(">II")  # topic and key lengths, in bytes


class RedisDelivery(NamedTuple):
    topic: str
    key: str
    payload: bytes
    ident: str = ""  # the message's id in Redis; "" for an answer kept in this process


class RedisTransport:
    """The embedded queue in Redis (see the module's docstring); build it with ``for_store`` or ``from_url``."""

    def __init__(self, client: Any, prefix: str, clock: Clock, *, local_prefix: str | None = None,
                 lease_ms: int = DEFAULT_LEASE_MS, prefetch: int = DEFAULT_PREFETCH, duplicate: bool = False,
                 where: str = "redis") -> None:
        self.client, self.prefix, self.clock = client, prefix, clock
        self.local_prefix = local_prefix
        self.lease_ms = lease_ms
        self.prefetch = max(1, prefetch)
        self.duplicate = duplicate
        self.where = where
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sent = 0
        self.scripts = QueueScripts.register(client, prefix)
        self._outbox = Outbox(self.scripts, self.token)
        self._local: deque[RedisDelivery] = deque()
        self._ahead: deque[RedisDelivery] = deque()  # taken in the last round trip, not handed out yet
        self._keeper = QueueKeeper(self._outbox, lease_ms)
        self._wait = _Wait(self)
        self._finalizer = weakref.finalize(self, shut_down, self._outbox, self._keeper)

    @classmethod
    def for_store(cls, store: RedisStateStore, clock: Clock, local_prefix: str | None = None,
                  **options: Any) -> RedisTransport:
        """The queue beside ``store``'s states, on its connection, under ``queue_prefix(store.prefix)``."""
        return cls(store.client, queue_prefix(store.prefix), clock, local_prefix=local_prefix, where=store.where,
                   **options)

    @classmethod
    def from_url(cls, url: str, prefix: str, clock: Clock, **options: Any) -> RedisTransport:
        """A queue over a new connection pool; ``url`` like ``redis://127.0.0.1:6379/0``."""
        return cls(RedisStateStore.from_url(url).client, prefix, clock, where=redact(url), **options)

    # -- Transport -------------------------------------------------------------------------

    def send(self, topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        self.sent += 1
        copies = 2 if self.duplicate else 1
        due = deliver_at_ms if deliver_at_ms is not None and deliver_at_ms > self.clock.now_ms() else None
        if due is None and self.local_prefix is not None and topic.startswith(self.local_prefix):
            self._local.extend([RedisDelivery(topic, key, bytes(payload))] * copies)
            return
        frame = encode_frame(topic, key, payload)
        self._outbox.sends.extend([(b"" if due is None else str(due).encode(), frame)] * copies)

    def flush(self) -> None:
        """Write every message sent so far (and the pending settlements) in one round trip.

        Raises BackendError when Redis cannot be reached: the messages are then dropped (the
        caller's input is handled again and sends them anew); settlements are kept for later.
        """
        if not self._outbox.sends and not self._outbox.settles:
            return
        sends, self._outbox.sends = self._outbox.sends, []
        try:
            self._step(0, sends)
        except BackendError:
            if sends:
                raise
            log.warning("acknowledgements for the queue at %s wait for Redis to answer", self.where)

    # -- the embedded loop's queue ------------------------------------------------------------

    def poll(self) -> RedisDelivery | None:
        if self._local:
            return self._local.popleft()
        if self._ahead:
            return self._ahead.popleft()
        if self._wait.pending():
            self._wait.nap()
            return None
        sends, self._outbox.sends = self._outbox.sends, []
        try:
            reply = self._step(self.prefetch, sends)
        except BackendError as exc:
            self._outbox.sends[:0] = sends  # written later, once Redis answers
            self._wait.outage(exc)
            return None
        return self._taken(reply)

    def ack(self, delivery: Delivered) -> None:
        ident = _ident(delivery)
        if ident:
            self._outbox.settle(ident, "")

    def requeue(self, delivery: Delivered, deliver_at_ms: int) -> None:
        ident = _ident(delivery)
        if ident:
            self._outbox.settle(ident, str(deliver_at_ms))
        else:  # an answer kept in this process: into Redis, delayed
            self.send(delivery.topic, delivery.key, delivery.payload, max(deliver_at_ms, self.clock.now_ms() + 1))

    def next_due_ms(self) -> int | None:
        now = self.clock.now_ms()
        if self._local or self._ahead or self._outbox.settles or self._outbox.sends:
            return now
        if self._wait.pending():
            return now + self._wait.remaining_ms()
        try:
            ready, first = self._read(lambda p: (p.llen(self.scripts.key("ready")),
                                                 p.zrange(self.scripts.key("delayed"), 0, 0, withscores=True)))
        except BackendError as exc:
            self._wait.outage(exc)
            return now + self._wait.remaining_ms()
        if ready:
            return now
        return int(first[0][1]) if first else None

    def pending(self) -> int:
        """Messages not acknowledged yet: here (sends not flushed, answers) and in Redis."""
        ready, delayed, taken = self._read(lambda p: (p.llen(self.scripts.key("ready")),
                                                      p.zcard(self.scripts.key("delayed")),
                                                      p.llen(self.scripts.key("processing"))))
        unsettled = sum(1 for _, due in self._outbox.settles if due == "")
        return int(len(self._local) + len(self._outbox.sends) + ready + delayed + taken - unsettled)

    def close(self) -> None:
        """Write what is left, stop renewing the lease and release it: another process may take over at once."""
        self._finalizer()

    # -- internals -------------------------------------------------------------------------

    def _step(self, take: int, sends: list[tuple[bytes, bytes]]) -> Any:
        """One round trip: write ``sends``, apply the settlements, and take up to ``take`` messages."""
        return self._call("step", self._outbox.step, take, self.clock.now_ms(), self.lease_ms, sends)

    def _taken(self, reply: list[Any]) -> RedisDelivery | None:
        if int(reply[0]) == 0:
            self._wait.standby(int(reply[1]), _text(reply[2]))
            return None
        self._wait.owner(int(reply[1]))
        self._keeper.start()
        for i in range(2, len(reply), 2):
            topic, key, payload = decode_frame(bytes(reply[i + 1]))
            self._ahead.append(RedisDelivery(topic, key, payload, _text(reply[i])))
        return self._ahead.popleft() if self._ahead else None

    def _read(self, queue: Any) -> Any:
        pipe = self.client.pipeline(transaction=False)
        queue(pipe)
        return self._call("read", pipe.execute)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise BackendError(
                f"Redis {what} of the embedded queue {self.prefix!r} at {self.where} failed: {type(exc).__name__}: "
                f"{str(exc).rstrip('.')}. Is redis-server running and reachable (deploy/redis.sh status)? "
                "Nothing queued is lost: the queue carries on once Redis answers.") from exc


class _Wait:
    """When this process may poll Redis again: another process runs the queue, or Redis is down."""

    def __init__(self, transport: RedisTransport) -> None:
        self.transport = transport
        self.until: float | None = None  # time.monotonic()
        self.outages = 0
        self.owner_seen: tuple[str, float] | None = None  # another owner, and since when
        self.warned = False

    def pending(self) -> bool:
        return self.until is not None and time.monotonic() < self.until

    def nap(self) -> None:
        """Called when polled too early: on a virtual clock, which skips ahead at once, do not spin."""
        if self.until is not None:
            time.sleep(max(0.0, min(self.until - time.monotonic(), STANDBY_POLL_S)))

    def remaining_ms(self) -> int:
        return 0 if self.until is None else max(1, int((self.until - time.monotonic()) * 1000))

    def outage(self, exc: BackendError) -> None:
        delay = OUTAGE_DELAYS_MS[min(self.outages, len(OUTAGE_DELAYS_MS) - 1)]
        if self.outages == 0:
            log.error("%s The loop looks again every few seconds.", exc)
        self.outages += 1
        self.until = time.monotonic() + delay / 1000

    def standby(self, lease_left_ms: int, owner: str) -> None:
        lease = self.transport.lease_ms
        self.until = time.monotonic() + min(lease_left_ms if lease_left_ms > 0 else lease, STANDBY_RECHECK_MS) / 1000
        if self.owner_seen is None or self.owner_seen[0] != owner:
            self.owner_seen = (owner, time.monotonic())
            log.info("the embedded queue %r is run by process %s; this one takes over when that one stops "
                     "(at most %d ms after it dies)", self.transport.prefix, owner, lease)
        elif not self.warned and time.monotonic() - self.owner_seen[1] > 2 * lease / 1000:
            self.warned = True
            log.warning("the embedded queue %r is still run by the live process %s: the embedded runtime runs one "
                        "process per app, so this one only sends (answers to its requests go to the other one) "
                        "until that one stops; to run both, give each its own Redis prefix", self.transport.prefix,
                        owner)

    def owner(self, handed_back: int) -> None:
        if self.outages:
            log.info("the embedded queue at %s answers again", self.transport.where)
        if self.owner_seen is not None or handed_back:
            log.info("this process runs the embedded queue %r now; %d message(s) its previous owner had taken "
                     "and not finished are handled again first", self.transport.prefix, handed_back)
        self.until, self.outages, self.owner_seen, self.warned = None, 0, None, False


def queue_prefix(store_prefix: str) -> str:
    """Where the queue beside the states under ``store_prefix`` keeps its keys (``sibling_prefix``)."""
    return sibling_prefix(store_prefix, "queue")


def sibling_prefix(store_prefix: str, name: str) -> str:
    """A key space beside the states under ``store_prefix``, never under it, so that nothing scanning the
    states meets its keys (a workflow id may be any text).

    ``pulsarflow:<tenant>/<namespace>/<app>:workflow:`` (``storage.redis.key_prefix``) gives
    ``pulsarflow:<tenant>/<namespace>/<app>:<name>:``, as a deployed engine of that name would use;
    any other prefix ``P`` gives ``pulsarflow-<name>:P``.
    """
    if store_prefix.endswith(":workflow:"):
        return store_prefix[:-len("workflow:")] + name + ":"
    return f"pulsarflow-{name}:{store_prefix}"


def encode_frame(topic: str, key: str, payload: bytes) -> bytes:
    t, k = topic.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass")
    return _FRAME.pack(len(t), len(k)) + t + k + bytes(payload)


def decode_frame(frame: bytes) -> tuple[str, str, bytes]:
    t, k = _FRAME.unpack_from(frame)
    start = _FRAME.size
    topic = frame[start:start + t].decode("utf-8", "surrogatepass")
    key = frame[start + t:start + t + k].decode("utf-8", "surrogatepass")
    return topic, key, frame[start + t + k:]


def _ident(delivery: Delivered) -> str:
    if not isinstance(delivery, RedisDelivery):
        raise TypeError(f"a RedisTransport settles only what it handed out, not a {type(delivery).__name__}")
    return delivery.ident


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
