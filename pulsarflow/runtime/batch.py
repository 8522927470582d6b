"""``BatchHandler``: the MessageHandler's sequence over many messages at once.

A worker process receives messages in batches; handling them one by one pays one broker
round trip and two state round trips per message. The batch does the same steps in the
same order, once for the whole batch:

1. decode every message (undecodable ones are dead-lettered with the reason);
2. group them by key, keeping their order, and read every key's state in one call;
3. run the engine over each key's messages in order, threading its state;
4. publish everything decided and wait for the broker's acks (one flush);
5. write every changed state in one call (compare-and-set per key);
6. the caller acknowledges the inputs only then.

A crash anywhere leads to redelivery, never loss, as for single messages. A key whose
write meets a conflict (another instance wrote it meanwhile) is handled again message by
message through the MessageHandler, which re-reads it; messages it re-sends are absorbed
by the idempotent engines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pulsarflow.errors import BackendError, DecodeError, StateConflictError
from pulsarflow.runtime.handler import MessageHandler, crash_reason, is_finished
from pulsarflow.storage import StateStore, Versioned

log = logging.getLogger("pulsarflow.runtime")


class BatchHandler:
    def __init__(self, handler: MessageHandler) -> None:
        self.handler = handler

    def handle_batch(self, messages: Sequence[tuple[str, bytes]]) -> None:
        h = self.handler
        by_key: dict[str, list[tuple[str, bytes, Any]]] = {}
        for topic, payload in messages:
            try:
                envelope = h.codec.decode(h.engine.input_type, payload)
            except DecodeError as exc:
                h.dead_letter(topic, payload, str(exc))
                continue
            by_key.setdefault(h.engine.key(envelope), []).append((topic, payload, envelope))
        stored = get_many(h.store, list(by_key)) if h.store is not None and h.stateful else {}
        writes: list[tuple[str, Any, int]] = []
        for key, items in by_key.items():
            try:
                state, version = h.loaded(key, stored.get(key))
            except DecodeError as exc:
                for topic, payload, _ in items:
                    h.dead_letter(topic, payload, f"stored state of {key!r} is unreadable: {exc}")
                continue
            changed = False
            for topic, payload, envelope in items:
                try:
                    decision = h.decide(state, envelope)
                except (BackendError, StateConflictError):
                    raise
                except Exception as exc:  # as MessageHandler.handle: set the message aside, go on with the key
                    log.exception("the %s crashed on a message for %s", type(h.engine).__name__, key)
                    h.dead_letter(topic, payload, crash_reason(h.engine, exc))
                    continue
                if not decision.unchanged and decision.state is not None:
                    state, changed = decision.state, True
            if changed:
                writes.append((key, state, version))
        h.transport.flush()
        if not writes or h.store is None:
            return
        encoded = {key: h.encode_state(key, state) for key, state, _ in writes}
        conflicts = put_many(h.store, [(key, encoded[key], version, is_finished(state))
                                       for key, state, version in writes])
        for key, state, _ in writes:
            if key not in conflicts:
                h.remember(key, encoded[key], state)
        for key in conflicts:
            log.warning("state conflict on %s in a batch, handling its %d message(s) again one by one",
                        key, len(by_key[key]))
            for topic, payload, _ in by_key[key]:
                h.handle(topic, payload)


def get_many(store: StateStore, keys: list[str]) -> dict[str, Versioned]:
    """Every key's stored value, in one round trip when the store can (``get_many``)."""
    batched = getattr(store, "get_many", None)
    if batched is not None:
        return dict(batched(keys))
    found = {key: store.get(key) for key in keys}
    return {key: value for key, value in found.items() if value is not None}


def put_many(store: StateStore, writes: list[tuple[str, bytes, int, bool]]) -> set[str]:
    """Write each (key, value, expected version, finished); returns the keys that met a conflict."""
    batched = getattr(store, "put_many", None)
    if batched is not None:
        return set(batched(writes))
    conflicts = set()
    for key, value, version, finished in writes:
        try:
            store.put(key, value, version, finished=finished)
        except StateConflictError:
            conflicts.add(key)
    return conflicts
