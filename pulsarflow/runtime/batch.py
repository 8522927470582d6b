"""``BatchHandler``: the MessageHandler's sequence over many messages at once.

A worker process receives messages in batches; handling them one by one pays one broker
round trip and two state round trips per message. The batch does the same steps in the
same order, once for the whole batch:

1. decode and admit every message (one at fault is dead-lettered with the reason);
2. group them by key, keeping their order, and read every key's state in one call (and the
   history chunks of those not already at hand in one more);
3. run the engine over each key's messages in order, threading its state;
4. publish everything decided and wait for the broker's acks (one flush);
5. write every changed state in one call (compare-and-set per key);
6. the caller acknowledges the inputs only then.

A crash anywhere leads to redelivery, never loss, as for single messages. One message
never holds back the others (the policy of ``runtime/policy.py``):

- a message the engine fails on is handed, after the batch, to the MessageHandler alone,
  which reads its state afresh, tries it its bounded number of times and dead-letters it;
  the other messages of its key go on from the state before it;
- a message that meets an outage (a producer cannot be created, its key's state cannot be
  read or written, the flush fails) is reported in ``PartialBatchError.pending`` once the
  rest is done, so that the caller delivers only those again;
- a key whose write meets a conflict (another instance wrote it meanwhile) is handled
  again message by message; messages it re-sends are absorbed by the idempotent engines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from pulsarflow.errors import (
    BackendError,
    DecodeError,
    MessageRefusedError,
    NewerWriterError,
    PartialBatchError,
    StateConflictError,
)
from pulsarflow.runtime import deadletters
from pulsarflow.runtime.handler import MessageHandler, Prepared, unreadable_state_reason
from pulsarflow.storage import Versioned

log = logging.getLogger("pulsarflow.runtime")

Item = tuple[int, str, bytes, Any]  # position in the batch, topic, payload, envelope
Write = tuple[str, Any, int, Any]  # key, new state, version read, state read
FAILURES_BEFORE_GIVING_UP = 2  # keys read or written one by one after a failed batch call: stop after this many fail


class BatchHandler:
    def __init__(self, handler: MessageHandler) -> None:
        self.handler = handler

    def handle_batch(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Handle ``messages`` (topic, payload); PartialBatchError names those to deliver again."""
        run = _Run(self.handler)
        run.handle(messages)
        if run.pending:
            raise PartialBatchError(
                f"{len(run.pending)} of {len(messages)} message(s) of the batch met a backend failure and must "
                f"be delivered again (the others are done): {run.cause}", sorted(run.pending))


class _Run:
    """One batch: what was decided, what waits for a redelivery, what is handled alone."""

    def __init__(self, handler: MessageHandler) -> None:
        self.h = handler
        self.pending: set[int] = set()
        self.cause: BaseException | None = None
        self.alone: list[Item] = []  # at fault: handled one by one once the batch is done
        self.decided: list[Item] = []

    def handle(self, messages: Sequence[tuple[str, bytes]]) -> None:
        by_key = self._admit(messages)
        stored = self._read(by_key)
        writes = [w for key, items in by_key.items() if (w := self._decide(key, items, stored.get(key)))]
        try:
            self.h.transport.flush()
        except BackendError as exc:
            self._defer(self.decided, exc)
            return
        except MessageRefusedError:  # the broker refused one message of many: find it by handling each alone
            log.warning("the broker refused a message of a batch; handling its %d messages one by one",
                        len(self.decided))
            self.alone = self.decided + self.alone
            writes = []
        self._write(writes, by_key)
        for item in self.alone:
            self._handle_alone(item)

    def _defer(self, items: Sequence[Item], exc: BaseException) -> None:
        self.pending.update(i for i, *_ in items)
        self.cause = self.cause or exc

    def _admit(self, messages: Sequence[tuple[str, bytes]]) -> dict[str, list[Item]]:
        by_key: dict[str, list[Item]] = {}
        for i, (topic, payload) in enumerate(messages):
            try:
                admitted = self.h.admit(topic, payload)
            except BackendError as exc:  # its dead letter could not be published: it comes back
                self._defer([(i, topic, payload, None)], exc)
                continue
            if admitted is not None:
                key, envelope = admitted
                by_key.setdefault(key, []).append((i, topic, payload, envelope))
        return by_key

    def _read(self, by_key: dict[str, list[Item]]) -> dict[str, Versioned]:
        store = self.h.store
        if store is None or not self.h.stateful or not by_key:
            return {}
        try:
            heads = store.get_many(list(by_key))
        except BackendError as exc:
            log.warning("reading %d states at once failed (%s); reading them one by one", len(by_key), exc)
        else:
            try:
                self.h.prefetch(heads)
            except BackendError as exc:  # each key reads its own chunks then, and meets the outage alone
                log.warning("reading the history chunks of %d states at once failed: %s", len(heads), exc)
            return heads
        found: dict[str, Versioned] = {}

        def read(key: str) -> None:
            value = store.get(key)
            if value is not None:
                found[key] = value

        for key in self._each(list(by_key), read):
            self._defer(by_key.pop(key), self.cause or BackendError("state read failed"))
        return found

    def _each(self, keys: list[str], operation: Callable[[str], None]) -> list[str]:
        """Run ``operation`` on each key; the keys it failed on (all the rest once several failed in a row)."""
        failed: list[str] = []
        in_a_row = 0
        for n, key in enumerate(keys):
            if in_a_row >= FAILURES_BEFORE_GIVING_UP:
                return failed + keys[n:]  # the backend is down, not one key: do not wait for each of them
            try:
                operation(key)
                in_a_row = 0
            except BackendError as exc:
                self.cause = self.cause or exc
                failed.append(key)
                in_a_row += 1
        return failed

    def _decide(self, key: str, items: list[Item], stored: Versioned | None) -> Write | None:
        h = self.h
        try:
            state, version = h.loaded(key, stored)
        except (NewerWriterError, BackendError) as newer:  # a newer release wrote the state, or an outage: retried
            self._defer(items, newer)
            return None
        except StateConflictError:  # the state moved on while its history chunks were read
            self.alone.extend(items)
            return None
        except DecodeError as exc:
            reason = unreadable_state_reason(key, exc)
            for item in items:
                try:
                    h.dead_letter(item[1], item[2], reason, deadletters.UNREADABLE_STATE, key=key)
                except BackendError as outage:
                    self._defer([item], outage)
            return None
        changed, before = False, state
        for item in items:
            try:
                decision = h.decide(state, item[3])
            except (BackendError, StateConflictError) as exc:
                self._defer([item], exc)
                continue
            except Exception as exc:  # the message's own fault: the MessageHandler applies the policy to it
                log.warning("a message for %s failed in a batch (%s: %s); handling it alone", key,
                            type(exc).__name__, exc)
                self.alone.append(item)
                continue
            self.decided.append(item)
            if not decision.unchanged and decision.state is not None:
                state, changed = decision.state, True
        return (key, state, version, before) if changed else None

    def _write(self, writes: list[Write], by_key: dict[str, list[Item]]) -> None:
        store = self.h.store
        if not writes or store is None:
            return
        prepared = [self.h.prepare(key, state, version, before) for key, state, version, before in writes]
        try:
            conflicts = set(self.h.put_many(prepared))
        except BackendError as exc:
            log.warning("writing %d states at once failed (%s); writing them one by one", len(prepared), exc)
            conflicts = self._put_each(prepared, by_key)
        for p in prepared:
            if p.key not in conflicts and not any(i in self.pending for i, *_ in by_key[p.key]):
                self.h.remember(p.key, p.value, p.state)
        for key in conflicts:
            log.warning("state conflict on %s in a batch, handling its %d message(s) again one by one",
                        key, len(by_key[key]))
            self.alone.extend(by_key[key])

    def _put_each(self, prepared: list[Prepared], by_key: dict[str, list[Item]]) -> set[str]:
        conflicts: set[str] = set()
        of_key = {p.key: p for p in prepared}

        def put(key: str) -> None:
            try:
                self.h.put(of_key[key])
            except StateConflictError:
                conflicts.add(key)

        for key in self._each(list(of_key), put):
            self._defer(by_key[key], self.cause or BackendError("state write failed"))
        return conflicts

    def _handle_alone(self, item: Item) -> None:
        i, topic, payload, _ = item
        if i in self.pending:
            return
        try:
            self.h.handle(topic, payload)
        except (BackendError, StateConflictError) as exc:
            self._defer([item], exc)
