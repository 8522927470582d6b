"""A workflow's history in append-only chunks beside a small head, so a step writes what it adds.

A stored workflow state is a *head*: the ``WorkflowState`` record with only the tail of its
history (``commands`` and ``arrivals`` after the sealed ones), and, in
``history_epoch``/``history_chunks``/``history_commands``/``history_arrivals``, where the
rest is. The rest is in sealed chunks (``HistoryChunk``), parts of the state's key
(``storage.PartStore``) named ``<epoch>.<index>``. Engines never see a head: the runtime
joins the chunks back before a message is handled, and splits the new state when saving:

- a save seals the tail into chunks of ``entries`` commands and arrivals together once it
  holds that many, and writes the head and only the newly sealed chunks, in one versioned
  write (atomic on Redis and in memory; on function state the chunks go first). So a step
  writes a head of bounded size plus, every ``entries / 2`` steps or so, one chunk.
- a sealed chunk never changes while a head names it. When the sealed history itself
  changes (continue-as-new starts an empty one, a retry cuts into it), the save moves to
  the next epoch: new chunks get new names, and the old epoch's chunks are dropped by the
  same write. A crash between writing a chunk and the head that names it (function state)
  leaves the old head, which does not name it; the next write of that name overwrites it.
- a load reads the head; the chunks only when the decoded state is not already at hand
  (the handler keeps the last whole state per key while the head's bytes are unchanged),
  and then only those it does not know yet, in one batched read.

States of releases 0.1.0 to 0.3.0 are one whole record (``history_chunks`` reads as 0): they
are read as they are and chunked by their next write. See docs/state.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pulsarflow.codec import Codec
from pulsarflow.errors import DecodeError
from pulsarflow.messages import Arrival, Command, HistoryChunk, WorkflowState
from pulsarflow.messages.evolve import evolve
from pulsarflow.storage import Parts, PartStore, StateStore, Versioned, part_store

CHUNK_ENTRIES = 64  # commands and arrivals per sealed chunk
READ_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a head's sealed history is: which epoch, how many chunks, how many commands and arrivals."""

    epoch: int = 0
    chunks: int = 0
    commands: int = 0
    arrivals: int = 0

    @classmethod
    def of(cls, state: WorkflowState) -> Layout:
        return cls(state.history_epoch, state.history_chunks, state.history_commands, state.history_arrivals)

    def names(self, start: int = 0) -> list[str]:
        return [part_name(self.epoch, i) for i in range(start, self.chunks)]


def part_name(epoch: int, index: int) -> str:
    return f"{epoch}.{index}"


@dataclass(frozen=True, slots=True)
class Encoded:
    """A state ready to store: the head's bytes, the chunks to write and drop, and the whole state it stands for."""

    head: bytes
    parts: Parts
    state: WorkflowState


class MissingChunkError(DecodeError):
    """A head names a chunk that is not there."""


def seal(state: WorkflowState, layout: Layout, entries: int) -> tuple[Layout, list[HistoryChunk]]:
    """The chunks to seal from ``state``'s history after ``layout``, ``entries`` entries each, and the new layout."""
    commands, arrivals = state.commands, state.arrivals
    nc, na, count = layout.commands, layout.arrivals, layout.chunks
    sealed: list[HistoryChunk] = []
    while (len(commands) - nc) + (len(arrivals) - na) >= entries:
        take_c = min(len(commands) - nc, entries)
        take_a = entries - take_c
        sealed.append(HistoryChunk(commands[nc:nc + take_c], arrivals[na:na + take_a]))
        nc, na, count = nc + take_c, na + take_a, count + 1
    return Layout(layout.epoch, count, nc, na), sealed


def keeps_sealed(state: WorkflowState, before: WorkflowState, layout: Layout) -> bool:
    """Whether ``state`` still starts with the history ``before`` has sealed.

    Within one run (same ``generation`` and ``runs``) the engines only append to a history,
    so the check is the lengths and the last sealed entries (O(1)); a new run (a retry, a
    continue-as-new) compares the whole sealed prefix (tuples compare by identity first).
    """
    nc, na = layout.commands, layout.arrivals
    if len(state.commands) < nc or len(state.arrivals) < na:
        return False
    if state.generation == before.generation and state.runs == before.runs:
        return ((nc == 0 or state.commands[nc - 1] == before.commands[nc - 1])
                and (na == 0 or state.arrivals[na - 1] == before.arrivals[na - 1]))
    return state.commands[:nc] == before.commands[:nc] and state.arrivals[:na] == before.arrivals[:na]


class HistoryChunks:
    """Splits a whole WorkflowState into a head and chunks, and joins them back."""

    def __init__(self, codec: Codec, entries: int = CHUNK_ENTRIES) -> None:
        if entries < 1:
            raise ValueError(f"a history chunk holds at least one entry, got {entries}")
        self.codec = codec
        self.entries = entries

    def encode(self, state: WorkflowState, before: WorkflowState | None) -> Encoded:
        """``state`` as a head and the chunks to write, given ``before``, the stored state it was decided from."""
        layout = Layout.of(before) if before is not None else Layout()
        drop: tuple[str, ...] = ()
        if layout.chunks and (before is None or not keeps_sealed(state, before, layout)):
            drop, layout = tuple(layout.names()), Layout(layout.epoch + 1)
        new, chunks = seal(state, layout, self.entries)
        write = tuple((part_name(new.epoch, layout.chunks + i), self.codec.encode(chunk))
                      for i, chunk in enumerate(chunks))
        whole = with_layout(state, new)
        head = evolve(whole, commands=state.commands[new.commands:], arrivals=state.arrivals[new.arrivals:])
        return Encoded(self.codec.encode(head), Parts(write, drop), whole)

    def wanted(self, head: WorkflowState, known: WorkflowState | None = None) -> list[str]:
        """The names of the chunks ``head`` needs that ``known`` (an earlier whole state of its key) lacks."""
        layout = Layout.of(head)
        return layout.names(_reusable(layout, known))

    def join(self, head: WorkflowState, parts: Mapping[str, bytes], known: WorkflowState | None = None,
             ) -> WorkflowState:
        """The whole state of ``head``, from its chunks in ``parts`` (and what ``known`` already holds)."""
        layout = Layout.of(head)
        if layout.chunks == 0:
            return head
        start = _reusable(layout, known)
        commands: list[Command] = []
        arrivals: list[Arrival] = []
        if start and known is not None:
            known_layout = Layout.of(known)
            commands.extend(known.commands[:known_layout.commands])
            arrivals.extend(known.arrivals[:known_layout.arrivals])
        for name in layout.names(start):
            data = parts.get(name)
            if data is None:
                raise MissingChunkError("WorkflowState", 0, f"the state of {head.workflow_id!r} names history "
                                        f"chunk {name} of {layout.chunks}, which is not stored")
            chunk: HistoryChunk = self.codec.decode(HistoryChunk, data)
            commands.extend(chunk.commands)
            arrivals.extend(chunk.arrivals)
        if len(commands) != layout.commands or len(arrivals) != layout.arrivals:
            raise DecodeError("WorkflowState", 0, f"the history chunks of {head.workflow_id!r} hold {len(commands)} "
                              f"commands and {len(arrivals)} arrivals, its state says {layout.commands} and "
                              f"{layout.arrivals}")
        return evolve(head, commands=tuple(commands) + head.commands, arrivals=tuple(arrivals) + head.arrivals)

    def read(self, store: PartStore, key: str, stored: Versioned, known: WorkflowState | None = None,
             ) -> WorkflowState:
        """The whole state of the head ``stored`` under ``key``, its chunks read in one call.

        A chunk missing because a writer moved the state on meanwhile (only possible for a
        reader beside the engine, e.g. the deploy gate) makes it read the head again.
        """
        for _ in range(READ_ATTEMPTS):
            head: WorkflowState = self.codec.decode(WorkflowState, stored.value)
            names = self.wanted(head, known)
            parts = store.get_parts({key: names})[key] if names else {}
            try:
                return self.join(head, parts, known)
            except MissingChunkError:
                again = store.get(key)
                if again is None or again == stored:
                    raise
                stored = again
        return self.join(head, parts, known)


def with_layout(state: WorkflowState, layout: Layout) -> WorkflowState:
    if Layout.of(state) == layout:
        return state
    return evolve(state, history_epoch=layout.epoch, history_chunks=layout.chunks,
                   history_commands=layout.commands, history_arrivals=layout.arrivals)


def _reusable(layout: Layout, known: WorkflowState | None) -> int:
    """How many of ``layout``'s chunks ``known`` holds already (same epoch: chunks never change once named)."""
    if known is None:
        return 0
    mine = Layout.of(known)
    if mine.epoch != layout.epoch or mine.chunks > layout.chunks or mine.chunks == 0:
        return 0
    if len(known.commands) < mine.commands or len(known.arrivals) < mine.arrivals:
        return 0
    return mine.chunks


def read_whole(store: PartStore, codec: Codec, keys: Sequence[str]) -> dict[str, WorkflowState]:
    """The whole stored states of ``keys`` (absent ones left out): for tools that read states beside the engine."""
    chunks = HistoryChunks(codec)
    return {key: chunks.read(store, key, stored) for key, stored in store.get_many(list(keys)).items()}


def whole_state(store: StateStore, codec: Codec, key: str, stored: Versioned) -> WorkflowState:
    """The whole state of one stored head, its chunks joined (a store without parts holds whole states)."""
    parts = part_store(store)
    if parts is None:
        whole: WorkflowState = codec.decode(WorkflowState, stored.value)
        return whole
    return HistoryChunks(codec).read(parts, key, stored)

