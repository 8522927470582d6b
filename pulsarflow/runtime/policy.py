"""The failure policy: what becomes of a message whose handling failed, decided in one place.

Every failure is one of two things (docs/reliability.md):

- **the message's own fault**: its bytes do not decode, it names a topic the app does not
  own, a key or payload is over a limit, or the engine fails on it. Trying again cannot
  help (or can help only by chance), so it is tried at most ``ATTEMPTS[kind]`` times in
  place and then dead-lettered with the reason. Other messages never wait for it.
- **a backend outage**: the store or the broker cannot be reached (``BackendError``), or
  a state kept changing under us (``StateConflictError``). The message is fine: it is
  retried after a short, growing delay (``Backoff``) and never dead-lettered.

``MessageHandler.handle`` applies this to one message; ``BatchHandler`` hands every
message that fails for its own reason to it, and reports the ones that met an outage so
that the caller delivers only those again (``Redeliveries``, ``call_with_backoff``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pulsarflow.errors import BackendError, DecodeError, MessageRefusedError, NewerWriterError, StateConflictError
from pulsarflow.runtime import deadletters

log = logging.getLogger("pulsarflow.runtime")

T = TypeVar("T")
OUTAGE = "outage"
MAX_CRASH_ATTEMPTS = 3  # an engine that fails on a message this often in a row: dead-lettered
ATTEMPTS = {deadletters.UNDECODABLE: 1, deadletters.REFUSED: 1, deadletters.UNREADABLE_STATE: 1,
            deadletters.CRASH: MAX_CRASH_ATTEMPTS}
HELD_ATTEMPTS = 20  # a batching loop retries a message this often (about 80 s) before giving it back to the broker
BLOCKING_RETRY_S = 30.0  # the one-message path of a Function retries in place this long, then the runtime nacks


def classify(exc: BaseException) -> str:
    """``OUTAGE`` (retry later, never dead-letter) or the dead-letter kind of the message's own fault."""
    if isinstance(exc, (BackendError, StateConflictError, NewerWriterError)):  # a newer writer: upgrade pending
        return OUTAGE
    if isinstance(exc, DecodeError):
        return deadletters.UNDECODABLE
    if isinstance(exc, MessageRefusedError):
        return deadletters.REFUSED
    return deadletters.CRASH


def crash_reason(engine: object, exc: BaseException, attempts: int) -> str:
    return (f"the {type(engine).__name__} crashed on this message: {type(exc).__name__}: {exc} "
            f"(tried {attempts} time(s); a bug, not bad input: report it with this message, and once it is "
            "fixed re-publish it with `pulsarflow deadletters replay`)")


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts after an outage: ``initial_s``, doubling, at most ``max_s``."""

    initial_s: float = 0.2
    factor: float = 2.0
    max_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failure (1 = the first)."""
        return float(min(self.max_s, self.initial_s * self.factor ** min(max(attempt - 1, 0), 64)))


def call_with_backoff(fn: Callable[[], T], backoff: Backoff = Backoff(), give_up_after_s: float = BLOCKING_RETRY_S,
                      sleep: Callable[[float], None] | None = None,
                      clock: Callable[[], float] = time.monotonic) -> T:
    """``fn()``, tried again after each BackendError with growing delays for up to ``give_up_after_s``."""
    sleep = sleep or time.sleep
    started, attempt = clock(), 0
    while True:
        try:
            return fn()
        except (BackendError, StateConflictError) as exc:
            attempt += 1
            delay = backoff.delay(attempt)
            if clock() - started + delay > give_up_after_s:
                raise
            log.warning("a backend failed (attempt %d), trying again in %.1f s: %s", attempt, delay, exc)
            sleep(delay)


class Redeliveries(Generic[T]):
    """Messages that met an outage, held unacknowledged until their next attempt is due.

    A loop that owns its messages (a batching Function, a worker) retries them itself after
    ``Backoff`` delays instead of waiting for the broker's redelivery (60 s on Functions).
    After ``max_attempts`` a message is handed back to the broker (``hold`` returns False).
    """

    def __init__(self, backoff: Backoff = Backoff(), max_attempts: int = HELD_ATTEMPTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.clock = clock
        self._heap: list[tuple[float, int, T, int]] = []
        self._seq = itertools.count()

    def hold(self, item: T, attempt: int) -> bool:
        """Hold ``item`` after its ``attempt``-th failure; False when it has had its attempts."""
        if attempt >= self.max_attempts:
            return False
        heapq.heappush(self._heap, (self.clock() + self.backoff.delay(attempt), next(self._seq), item, attempt))
        return True

    def due(self) -> list[tuple[T, int]]:
        """The held items whose next attempt is due, with the number of attempts they had."""
        now, ready = self.clock(), []
        while self._heap and self._heap[0][0] <= now:
            _, _, item, attempt = heapq.heappop(self._heap)
            ready.append((item, attempt))
        return ready

    def wait_s(self) -> float | None:
        """Seconds until the next held item is due (None when none is held)."""
        return max(self._heap[0][0] - self.clock(), 0.0) if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
