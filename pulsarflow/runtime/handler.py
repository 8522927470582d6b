"""``MessageHandler``: the load / compute / publish / save / ack sequence around an engine.

Order matters for at-least-once delivery: outgoing messages are published and flushed
(acknowledged by the broker) before the new state is saved, and the caller acknowledges
the input only after ``handle`` returns. A crash anywhere in between leads to a
redelivery, which the idempotent engines absorb. Bytes that cannot be decoded go to the
dead-letter topic with the reason, and are acknowledged: they would never decode.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from pulsarflow.clock import Clock
from pulsarflow.codec import Codec
from pulsarflow.engines.outgoing import Decision
from pulsarflow.errors import BackendError, DecodeError, StateConflictError
from pulsarflow.messages import DeadLetter
from pulsarflow.messages.state import STATE_SCHEMA_VERSION
from pulsarflow.storage import StateStore, Versioned
from pulsarflow.transport import Transport

if TYPE_CHECKING:
    from pulsarflow.events import Observer

log = logging.getLogger("pulsarflow.runtime")

HISTORY_WARNING_STEPS = 2_000  # warn each time a run's history grows past another multiple of this
MAX_CONFLICT_RETRIES = 5
STATE_CACHE_SIZE = 10_000


class Engine(Protocol):
    input_type: type
    state_type: type | None

    def key(self, envelope: Any) -> str: ...

    def handle(self, state: Any, envelope: Any, now_ms: int) -> Decision[Any]: ...


class MessageHandler:
    """Runs one engine (or executor) over incoming bytes. Shared by every deployment."""

    def __init__(self, engine: Engine, codec: Codec, transport: Transport, clock: Clock,
                 store: StateStore | None, dead_letter_topic: str, observer: Observer | None = None) -> None:
        self.engine = engine
        self.codec = codec
        self.transport = transport
        self.clock = clock
        self.store = store
        self.dead_letter_topic = dead_letter_topic
        # Event storage and metrics. Called before the flush, so events are published
        # with the outgoing messages: a crash before the state is saved resends both.
        self.observer = observer
        # Decoded state by key, reused only while the stored bytes are identical: the
        # store stays the truth, the cache only saves a decode.
        self._cache: dict[str, tuple[bytes, Any]] = {}

    def handle(self, topic: str, payload: bytes) -> None:
        try:
            envelope = self.codec.decode(self.engine.input_type, payload)
        except DecodeError as exc:
            self.dead_letter(topic, payload, str(exc))
            return
        key = self.engine.key(envelope)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                self._handle_once(topic, payload, key, envelope)
                return
            except StateConflictError:
                log.warning("state conflict on %s, recomputing", key)
            except BackendError:
                raise  # the store or the broker: the message is not acknowledged and comes back later
            except Exception as exc:  # a bug the message triggers: set it aside instead of retrying it forever
                log.exception("the %s crashed on a message for %s", type(self.engine).__name__, key)
                self.dead_letter(topic, payload, crash_reason(self.engine, exc))
                return
        raise StateConflictError(f"state {key!r} kept changing under {MAX_CONFLICT_RETRIES} attempts")

    def _handle_once(self, topic: str, payload: bytes, key: str, envelope: Any) -> None:
        try:
            state, version = self.loaded(key, self.store.get(key) if self.store is not None and self.stateful
                                         else None)
        except DecodeError as exc:
            self.dead_letter(topic, payload, f"stored state of {key!r} is unreadable: {exc}")
            return
        decision = self.decide(state, envelope)
        self.transport.flush()
        if self.stateful and not decision.unchanged and decision.state is not None:
            self.save(key, decision.state, version)

    @property
    def stateful(self) -> bool:
        return self.store is not None and self.engine.state_type is not None

    def loaded(self, key: str, stored: Versioned | None) -> tuple[Any, int]:
        """The decoded state and its version (None, 0 when absent); DecodeError if unreadable."""
        if stored is None:
            return None, 0
        return self._decode_state(key, stored.value), stored.version

    def decide(self, state: Any, envelope: Any) -> Decision[Any]:
        """Run the engine on one message and send (not yet flush) what it decided."""
        now = self.clock.now_ms()
        decision = self.engine.handle(state, envelope, now)
        _warn_on_long_history(state, decision.state)
        for o in decision.outgoing:
            self.transport.send(o.topic, o.key, self.codec.encode(o.message), o.deliver_at_ms)
        if self.observer is not None:
            self.observer.observe(envelope, state, decision, now)
        return decision

    def encode_state(self, key: str, state: Any) -> bytes:
        encoded = self.codec.encode(state)
        self._cache.pop(key, None)
        return encoded

    def save(self, key: str, state: Any, version: int) -> None:
        assert self.store is not None
        encoded = self.encode_state(key, state)
        self.store.put(key, encoded, version, finished=is_finished(state))
        self.remember(key, encoded, state)

    def _decode_state(self, key: str, value: bytes) -> Any:
        cached = self._cache.get(key)
        if cached is not None and cached[0] == value:
            return cached[1]
        state = self.codec.decode(self.engine.state_type, value)  # type: ignore[arg-type]
        if getattr(state, "schema_version", 0) > STATE_SCHEMA_VERSION:
            raise DecodeError(self.engine.state_type.__name__, len(value),  # type: ignore[union-attr]
                              f"state layout version {state.schema_version} is newer than this release reads "
                              f"({STATE_SCHEMA_VERSION}); upgrade pulsarflow on every engine")
        self.remember(key, value, state)
        return state

    def remember(self, key: str, value: bytes, state: Any) -> None:
        if len(self._cache) >= STATE_CACHE_SIZE:
            del self._cache[next(iter(self._cache))]
        self._cache[key] = (value, state)

    def dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        log.error("dead-lettering a message from %s: %s", topic, reason)
        letter = DeadLetter(topic=topic, reason=reason, payload=payload, size=len(payload),
                            at_ms=self.clock.now_ms())
        self.transport.send(self.dead_letter_topic, topic, self.codec.encode(letter))
        self.transport.flush()


def crash_reason(engine: Any, exc: BaseException) -> str:
    return (f"the {type(engine).__name__} crashed on this message: {type(exc).__name__}: {exc} "
            "(a bug, not bad input: report it with this message; re-publish it once fixed)")


def is_finished(state: Any) -> bool:
    """A closed workflow's state is finished: a store with a retention lets it expire."""
    return getattr(state, "closed_at_ms", None) is not None


def _warn_on_long_history(before: Any, after: Any) -> None:
    steps_before, steps_after = len(getattr(before, "commands", ())), len(getattr(after, "commands", ()))
    if steps_before // HISTORY_WARNING_STEPS != steps_after // HISTORY_WARNING_STEPS and steps_after > steps_before:
        log.warning("workflow %r (%s) has %d steps in its history; every step replays them all, so call "
                    "ctx.continue_as_new(...) every few hundred steps (see docs/workflows.md)",
                    after.workflow_id, after.workflow_name, steps_after)
