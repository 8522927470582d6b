"""What the Redis queue (``transport/redis.py``) keeps for its next round trip, and the thread that helps.

The loop's thread sends its acknowledgements with its next round trip, which within the
loop comes at once. A handler that runs long (a task of minutes) would hold them up, and
a kill meanwhile would make the messages handled just before it come back; so a daemon
thread sends acknowledgements that waited longer than ``TICK_S``, and renews the owner's
lease. Neither holds a reference to the transport, so that it can be collected (and its
finalizer hand the queue over).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pulsarflow.transport.redis_scripts import QueueScripts

log = logging.getLogger("pulsarflow.transport.redis")

TICK_S = 0.1  # how often the keeper looks: acknowledgements older than this are sent by it


class Outbox:
    """Sends not written yet, as (due or b'', frame), and settlements not applied yet, as (id, due or '')."""

    def __init__(self, scripts: QueueScripts, token: str) -> None:
        self.scripts, self.token = scripts, token
        self.sends: list[tuple[bytes, bytes]] = []
        self.settles: list[tuple[str, str]] = []
        self.lock = threading.Lock()  # the loop's thread and the keeper's
        self.since = 0.0  # time.monotonic() of the oldest settlement waiting

    def settle(self, ident: str, due: str) -> None:
        with self.lock:
            if not self.settles:
                self.since = time.monotonic()
            self.settles.append((ident, due))

    def step(self, take: int, now_ms: int, lease_ms: int, sends: list[tuple[bytes, bytes]]) -> Any:
        """One round trip: write ``sends``, apply every settlement, take up to ``take`` messages.

        Raises redis-py's errors; the settlements are then kept for the next round trip.
        """
        with self.lock:
            settled = len(self.settles)
            args: list[Any] = [take, self.token, now_ms, lease_ms, len(sends)]
            for pair in (*sends, *self.settles):
                args.extend(pair)
            reply = self.scripts.step(keys=list(self.scripts.keys), args=args)
            del self.settles[:settled]
            return reply

    def stale(self, age_s: float) -> bool:
        return bool(self.settles) and time.monotonic() - self.since >= age_s


class QueueKeeper:
    """A daemon thread while this process runs the queue: it renews the lease and sends stale settlements."""

    def __init__(self, outbox: Outbox, lease_ms: int) -> None:
        self.outbox, self.lease_ms = outbox, lease_ms
        self.stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and not self.stopped.is_set():
            self._thread = threading.Thread(target=self._run, name="pulsarflow-queue-keeper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        renewed = time.monotonic()
        while not self.stopped.wait(TICK_S):
            try:
                if time.monotonic() - renewed >= self.lease_ms / 3000:
                    self.outbox.scripts.renew_lease(self.outbox.token, self.lease_ms)
                    renewed = time.monotonic()
                if self.outbox.stale(TICK_S):
                    self.outbox.step(0, 0, 0, [])
            except Exception as exc:  # Redis down: the loop's next round trip finds out and says so
                log.debug("the embedded queue's keeper could not reach Redis: %s", exc)

    def stop(self) -> None:
        self.stopped.set()


def shut_down(outbox: Outbox, keeper: QueueKeeper) -> None:
    """Write what is left and release the lease (``close()``, or the interpreter's exit)."""
    keeper.stop()
    try:
        if outbox.sends or outbox.settles:
            outbox.step(0, 0, 0, outbox.sends)
            outbox.sends.clear()
        outbox.scripts.release_lease(outbox.token)
    except Exception as exc:  # the next owner takes over once the lease runs out, and redelivers
        log.warning("could not hand the embedded queue over cleanly (%s); the next process takes it over once "
                    "the lease runs out", exc)
