"""``MessageHandler``: the load / compute / publish / save / ack sequence around an engine.

Order matters for at-least-once delivery: outgoing messages are published and flushed
(acknowledged by the broker) before the new state is saved, and the caller acknowledges
the input only after ``handle`` returns. A crash anywhere in between leads to a
redelivery, which the idempotent engines absorb.

What a failure leads to is the policy of ``runtime/policy.py``: a message at fault (bytes
that do not decode, a key over a limit, a reply topic the app does not own, an engine
that fails on it every attempt) goes to the dead-letter topic with the reason and is
acknowledged; an outage (``BackendError``) is raised for the caller to deliver the
message again later.

The workflow engine's state is stored as a head and sealed history chunks
(``runtime/history.py``): the handler joins them into the whole state the engine sees and
splits the engine's new state again, so that a save writes what the step added.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pulsarflow import tracing
from pulsarflow.clock import Clock
from pulsarflow.codec import Codec
from pulsarflow.engines.outgoing import Decision
from pulsarflow.errors import (
    BackendError,
    DecodeError,
    MessageRefusedError,
    NewerWriterError,
    StateConflictError,
    TopicRefusedError,
)
from pulsarflow.messages import WorkflowState
from pulsarflow.runtime import deadletters, policy
from pulsarflow.runtime.admission import Admission
from pulsarflow.runtime.explain import explain_undecodable
from pulsarflow.runtime.history import CHUNK_ENTRIES, HistoryChunks, MissingChunkError
from pulsarflow.storage import Parts, StateStore, Versioned, part_store
from pulsarflow.topics import Topics
from pulsarflow.transport import Transport

if TYPE_CHECKING:
    from pulsarflow.events import Observer

log = logging.getLogger("pulsarflow.runtime")

HISTORY_WARNING_STEPS = 10_000  # warn each time a run's history grows past another multiple of this
MAX_CONFLICT_RETRIES = 5
STATE_CACHE_SIZE = 10_000


S = TypeVar("S")  # an engine's stored state
M = TypeVar("M", contravariant=True)  # the envelope it consumes


class Engine(Protocol[S, M]):
    """A pure engine: the state of one key and one message in, the new state and messages out.

    ``state_type`` is None for a stateless engine (the task executor). The workflow engine
    is an ``Engine[WorkflowState, WorkflowEngineMessage]``, the tag engine an
    ``Engine[TagState, TagEngineMessage]``.
    """

    @property
    def input_type(self) -> type: ...

    @property
    def state_type(self) -> type[S] | None: ...

    def key(self, envelope: M) -> str: ...

    def handle(self, state: S | None, envelope: M, now_ms: int) -> Decision[S]: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    """A state ready to write: its bytes (a head, for a chunked history), its parts, and the whole state."""

    key: str
    value: bytes
    version: int  # the version it was decided from
    finished: bool
    parts: Parts | None  # None: the store keeps no parts, the value is the whole state
    state: Any

    def row(self) -> tuple[str, bytes, int, bool, Parts]:
        return self.key, self.value, self.version, self.finished, self.parts or Parts()


class MessageHandler:
    """Runs one engine (or executor) over incoming bytes. Shared by every deployment."""

    def __init__(self, engine: Engine[Any, Any], codec: Codec, transport: Transport, clock: Clock,
                 store: StateStore | None, dead_letter_topic: str, observer: Observer | None = None,
                 admission: Admission | None = None, history_chunk_entries: int = CHUNK_ENTRIES) -> None:
        self.engine = engine
        self.codec = codec
        self.transport = transport
        self.clock = clock
        self.store = store
        self.dead_letter_topic = dead_letter_topic
        # Which keys, reply topics and sizes are let in and out (the app of the dead-letter topic by default).
        self.admission = admission or Admission(topics_of(dead_letter_topic))
        # Event storage and metrics. Called before the flush, so events are published
        # with the outgoing messages: a crash before the state is saved resends both.
        self.observer = observer
        # Decoded state by key, reused only while the stored bytes are identical: the
        # store stays the truth, the cache only saves a decode.
        self._cache: dict[str, tuple[bytes, Any]] = {}
        # A workflow's history in chunks beside its state, when the store keeps parts (all of pulsarflow's do).
        self.parts = part_store(store) if engine.state_type is WorkflowState else None
        self.history = HistoryChunks(codec, history_chunk_entries) if self.parts is not None else None

    def handle(self, topic: str, payload: bytes) -> None:
        """Handle one message, or dead-letter it; raises BackendError when it must come back later."""
        admitted = self.admit(topic, payload)
        if admitted is None:
            return
        key, envelope = admitted
        crashes = conflicts = 0
        while True:
            try:
                self._handle_once(topic, payload, key, envelope)
                return
            except StateConflictError:
                conflicts += 1
                if conflicts >= MAX_CONFLICT_RETRIES:
                    raise StateConflictError(f"state {key!r} kept changing under {conflicts} attempts") from None
                log.warning("state conflict on %s, recomputing", key)
            except BackendError:
                raise  # the store or the broker: the message is not acknowledged and comes back later
            except Exception as exc:  # the message's own fault: refused at once, or tried a bounded number of times
                kind = policy.classify(exc)
                crashes += 1
                if crashes < policy.ATTEMPTS[kind]:
                    log.warning("the %s failed on a message for %s (attempt %d), trying again: %s",
                                type(self.engine).__name__, key, crashes, exc)
                    self._cache.pop(key, None)  # the next attempt reads the state afresh
                    continue
                self._set_aside(topic, payload, key, kind, exc, crashes)
                return

    def admit(self, topic: str, payload: bytes) -> tuple[str, Any] | None:
        """The message's key and envelope; None when it was dead-lettered (undecodable or refused)."""
        try:
            envelope = self.codec.decode(self.engine.input_type, payload)
        except NewerWriterError:
            raise  # a newer release wrote it: not acknowledged, read once this engine is upgraded
        except DecodeError as exc:
            name = self.engine.input_type.__name__
            why = explain_undecodable(self.codec.schema_json(name), payload, exc)
            self.dead_letter(topic, payload, f"cannot decode {len(payload):,} bytes as {name}: {why}",
                             deadletters.UNDECODABLE)
            return None
        try:
            key = self.engine.key(envelope)
        except Exception as exc:  # a bug, but one this message triggers: set it aside
            self._set_aside(topic, payload, "", deadletters.CRASH, exc, 1)
            return None
        try:
            self.admission.check_input(key, envelope)  # (a key shaped like a chunk's is refused there)
        except MessageRefusedError as exc:
            self.dead_letter(topic, payload, str(exc), deadletters.REFUSED, key=key)
            return None
        return key, envelope

    def _set_aside(self, topic: str, payload: bytes, key: str, kind: str, exc: Exception, attempts: int) -> None:
        if kind == deadletters.CRASH:
            log.error("the %s failed on a message for %s %d time(s)", type(self.engine).__name__, key, attempts,
                      exc_info=exc)
            reason = policy.crash_reason(self.engine, exc, attempts)
        else:
            reason = str(exc)
        self.dead_letter(topic, payload, reason, kind, key=key, attempts=attempts)

    def _handle_once(self, topic: str, payload: bytes, key: str, envelope: Any) -> None:
        try:
            state, version = self.loaded(key, self.store.get(key) if self.store is not None and self.stateful
                                         else None)
        except NewerWriterError:
            raise
        except DecodeError as exc:
            self.dead_letter(topic, payload, unreadable_state_reason(key, exc), deadletters.UNREADABLE_STATE, key=key)
            return
        decision = self.decide(state, envelope)
        self.transport.flush()
        if self.stateful and not decision.unchanged and decision.state is not None:
            self.save(key, decision.state, version, before=state)

    @property
    def stateful(self) -> bool:
        return self.store is not None and self.engine.state_type is not None

    def loaded(self, key: str, stored: Versioned | None) -> tuple[Any, int]:
        """The decoded state and its version (None, 0 when absent); DecodeError if unreadable."""
        if stored is None:
            return None, 0
        return self._decode_state(key, stored.value), stored.version

    def decide(self, state: Any, envelope: Any) -> Decision[Any]:
        """Run the engine on one message and send (not yet flush) what it decided.

        Every outgoing message is checked before any is sent: one over the size limit
        refuses the whole decision (LimitExceededError); one for a topic the app does not
        own is not sent, and is dead-lettered instead.
        """
        now = self.clock.now_ms()
        decision = self._traced(state, envelope, now)
        _warn_on_long_history(state, decision.state)
        sends, refused = [], []
        for o in decision.outgoing:
            payload = self.codec.encode_legacy(o.message) if o.legacy else self.codec.encode(o.message)
            try:
                self.admission.check_output(o.topic, o.key, payload)
            except TopicRefusedError as exc:
                refused.append((o.topic, o.key, payload, str(exc)))
                continue
            sends.append((o.topic, o.key, payload, o.deliver_at_ms))
        for topic, key, payload, deliver_at_ms in sends:
            self.transport.send(topic, key, payload, deliver_at_ms)
        for topic, key, payload, reason in refused:
            self.dead_letter(topic, payload, reason, deadletters.REFUSED, key=key)
        if self.observer is not None:
            self.observer.observe(envelope, state, decision, now)
        return decision

    def _traced(self, state: Any, envelope: Any, now: int) -> Decision[Any]:
        """The engine's decision, in a span of the workflow's trace and through the decision interceptors."""
        if self.engine.state_type is None:  # the executor makes a span per task attempt itself
            return self.engine.handle(state, envelope, now)
        message = getattr(envelope, "message", envelope)
        parent = getattr(state, "trace", None) or getattr(message, "trace", None) or getattr(
            getattr(message, "start", None), "trace", None)
        key, kind = self.engine.key(envelope), type(message).__name__
        with tracing.span(f"pulsarflow.{self.engine.state_type.__name__.removesuffix('State').lower()} {kind}",
                          parent, key=key):
            decision: Decision[Any] = tracing.intercept_decision(
                key, kind, lambda: self.engine.handle(state, envelope, now))
            return decision

    def prepare(self, key: str, state: Any, version: int, before: Any = None) -> Prepared:
        """``state`` encoded for the store; ``before`` is the stored state it was decided from (its chunks)."""
        self._cache.pop(key, None)
        if self.history is None:
            return Prepared(key, self.codec.encode(state), version, is_finished(state), None, state)
        encoded = self.history.encode(state, before)
        return Prepared(key, encoded.head, version, is_finished(state), encoded.parts, encoded.state)

    def put(self, prepared: Prepared) -> None:
        """Write one prepared state (compare-and-set where the store has it)."""
        assert self.store is not None
        p = prepared
        if p.parts and self.parts is not None:  # a step that seals no chunk is a plain put
            self.parts.put_parts(p.key, p.value, p.version, p.parts, finished=p.finished)
        else:
            self.store.put(p.key, p.value, p.version, finished=p.finished)

    def put_many(self, prepared: list[Prepared]) -> list[str]:
        """Write prepared states in one call; the keys whose version was stale (left unchanged)."""
        assert self.store is not None
        if self.parts is not None and any(p.parts for p in prepared):
            return self.parts.put_parts_many([p.row() for p in prepared])
        return self.store.put_many([(p.key, p.value, p.version, p.finished) for p in prepared])

    def save(self, key: str, state: Any, version: int, before: Any = None) -> None:
        prepared = self.prepare(key, state, version, before)
        self.put(prepared)
        self.remember(key, prepared.value, prepared.state)

    def prefetch(self, stored: dict[str, Versioned]) -> None:
        """Join the histories of many stored states with one read of their chunks (a batch's states).

        Only saves round trips: a state that cannot be read here is read again, and its
        failure handled, when its messages are.
        """
        if self.history is None or self.parts is None:
            return
        heads: dict[str, tuple[bytes, Any, Any]] = {}
        for key, versioned in stored.items():
            cached = self._cache.get(key)
            if cached is not None and cached[0] == versioned.value:
                continue
            try:
                head = self._decode_head(versioned.value)
            except DecodeError:
                continue
            if head.history_chunks:
                heads[key] = (versioned.value, head, cached[1] if cached is not None else None)
        wanted = {key: self.history.wanted(head, known) for key, (_, head, known) in heads.items()}
        if not any(wanted.values()):
            return
        found = self.parts.get_parts(wanted)
        for key, (value, head, known) in heads.items():
            try:
                self.remember(key, value, self.history.join(head, found.get(key, {}), known))
            except DecodeError:
                continue

    def _decode_state(self, key: str, value: bytes) -> Any:
        cached = self._cache.get(key)
        if cached is not None and cached[0] == value:
            return cached[1]
        state = self._decode_head(value)
        if self.history is not None and self.parts is not None and state.history_chunks:
            state = self._joined(key, value, state, cached[1] if cached is not None else None)
        self.remember(key, value, state)
        return state

    def _decode_head(self, value: bytes) -> Any:
        state = self.codec.decode(self.engine.state_type, value)  # type: ignore[arg-type]
        readable = getattr(self.engine, "state_version", 0)  # each engine's own layout version
        if getattr(state, "schema_version", 0) > readable:
            raise DecodeError(self.engine.state_type.__name__, len(value),  # type: ignore[union-attr]
                              f"state layout version {state.schema_version} is newer than this release reads "
                              f"({readable}); upgrade pulsarflow on every engine")
        return state

    def _joined(self, key: str, value: bytes, head: WorkflowState, known: WorkflowState | None) -> WorkflowState:
        """The whole state of ``head``: its chunks read (those ``known`` lacks) and joined."""
        assert self.history is not None and self.parts is not None
        names = self.history.wanted(head, known)
        found = self.parts.get_parts({key: names}).get(key, {}) if names else {}
        try:
            return self.history.join(head, found, known)
        except MissingChunkError:
            again = self.parts.get(key)
            if again is not None and again.value != value:  # it moved on meanwhile: decide again from the new one
                raise StateConflictError(f"state {key!r} changed while its history was read") from None
            raise

    def remember(self, key: str, value: bytes, state: Any) -> None:
        if len(self._cache) >= STATE_CACHE_SIZE:
            del self._cache[next(iter(self._cache))]
        self._cache[key] = (value, state)

    def dead_letter(self, topic: str, payload: bytes, reason: str, kind: str = deadletters.CRASH, key: str = "",
                    attempts: int = 1) -> None:
        """Publish a letter for ``payload`` (cut to fit the broker's limit) and wait for the broker's ack."""
        log.error("dead-lettering a message from %s (%s, %d bytes): %s", topic, kind, len(payload), reason)
        letter = deadletters.build_dead_letter(topic, payload, reason, kind, self.clock.now_ms(), key=key,
                                               attempts=attempts,
                                               max_message_bytes=self.admission.max_message_bytes)
        try:
            self.transport.send(self.dead_letter_topic, key or topic, self.codec.encode(letter))
            self.transport.flush()
        except MessageRefusedError as exc:  # the letter must not be lost: treat it as an outage, retried
            raise BackendError(f"cannot publish a dead letter to {self.dead_letter_topic}: {exc}; the message "
                               "is kept and tried again (check that the engines may write to that topic)") from exc


def topics_of(dead_letter_topic: str) -> Topics:
    """The app whose dead-letter topic this is (``Topics.dead_letters`` read backwards)."""
    path = dead_letter_topic.split("://", 1)[-1]
    parts = path.split("/")
    if len(parts) == 3 and parts[2].endswith("-dead-letters"):
        return Topics(parts[0], parts[1], parts[2][:-len("-dead-letters")])
    return Topics()


def unreadable_state_reason(key: str, exc: DecodeError) -> str:
    return (f"the stored state of {key[:200]!r} is unreadable, so no message for it can be handled: {exc}. "
            "If a newer release wrote it, run that release; otherwise delete the key from the state store")


def is_finished(state: Any) -> bool:
    """A closed workflow's state is finished: a store with a retention lets it expire."""
    return getattr(state, "closed_at_ms", None) is not None


def _warn_on_long_history(before: Any, after: Any) -> None:
    steps_before, steps_after = len(getattr(before, "commands", ())), len(getattr(after, "commands", ()))
    if steps_before // HISTORY_WARNING_STEPS != steps_after // HISTORY_WARNING_STEPS and steps_after > steps_before:
        log.warning("workflow %r (%s) has %d steps in its history; a step stores only what it adds, but a replay "
                    "from the history (a restart, a workflow evicted from the cache, a query) goes through them "
                    "all: consider ctx.continue_as_new(...) (see docs/workflows.md)",
                    after.workflow_id, after.workflow_name, steps_after)
