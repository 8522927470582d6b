"""A simulated network of the pure engines on a virtual clock.

Every message is Avro-encoded with the real ``Codec`` when published and decoded when
delivered; each workflow's state is kept encoded in a dict. Messages due now are delivered
in a random order that keeps each key's order (unless ``Faults.disorder``); the clock
jumps to the next delayed message only when nothing is due. Order and faults are drawn
per message (a hash of the seed, the message's topic, key and id, and how often it came),
so that a smaller scenario keeps them. A task attempt delivered at
``t`` runs ``spec["dur"]`` ms: its outcome (and a retry's backoff) starts from ``t + dur``.
Faults: duplicates in the same instant or a minute later, a crash between publishing and
saving (the input comes again), per-key disorder as after a Key_Shared reassignment.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from typing import Any

from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter
from pulsarflow.engines.workflow import WorkflowEngine
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import (
    CancelTask,
    CancelWorkflow,
    ChildCompleted,
    ChildFailed,
    ClientMessage,
    ReplyTo,
    RetryWorkflow,
    SendSignal,
    StartWorkflow,
    TaskCompleted,
    TaskExecutorMessage,
    TaskFailed,
    TimerFired,
    UpdateCall,
    UpdateWorkflow,
    WorkflowEngineMessage,
    WorkflowState,
)
from pulsarflow.messages import client as status
from pulsarflow.runtime.executor import TaskExecutor
from pulsarflow.topics import Topics
from tests.sim import flows
from tests.sim.scripts import Action, Scenario
from tests.sim.trace import Attempt, Faults, Trace, describe

CODEC = Codec()
JSON = JsonConverter()
TOPICS = Topics(app="sim")
CLIENT = TOPICS.client("sim")
REGISTRY = Registry([flows.sim, flows.sim_task])
LATE_MS = 60_000
MAX_DELIVERIES = 50_000
RUN_MESSAGES = (TaskCompleted, TaskFailed, TimerFired, ChildCompleted, ChildFailed)


@dataclass
class Packet:
    topic: str
    key: str
    payload: bytes
    due: int
    seq: int
    ident: str = ""  # topic, key and message id: what the order and the faults of a message are drawn from
    rank: float = 0.0  # among the messages due, the lowest rank is delivered first...
    jumps: bool = False  # ... of those first of their key, or that may overtake older ones (disorder)


class SimClock:
    def __init__(self) -> None:
        self.ms = 0

    def now_ms(self) -> int:
        return self.ms

    def sleep_until(self, at_ms: int) -> None:
        self.ms = max(self.ms, at_ms)


class Network:
    def __init__(self, scenario: Scenario, faults: Faults, label: str, workflow_cache: int | None = None) -> None:
        self.faults = faults
        self.salt = f"{scenario.seed}/{label}"  # with a message, decides its rank and its faults
        self.seen: dict[tuple[str, str], int] = {}
        self.engine = WorkflowEngine(REGISTRY, JSON, TOPICS, workflow_cache)
        self.records: dict[tuple[str, int], list[flows.RunRecord]] = {}
        self.clock = SimClock()
        self.executor = TaskExecutor(REGISTRY, JSON, TOPICS, self.clock)
        self.states: dict[str, bytes] = {}
        self.answers: dict[str, list[Any]] = {}
        self.trace = Trace()
        self.now = 0
        self.seq = 0
        self.deliveries = 0
        self.ready: list[Packet] = []
        self.delayed: list[tuple[int, int, Packet]] = []
        self.ran: set[tuple[str, int, int, int]] = set()
        flows.PROBE.nesting_refused.clear()
        flows.PROBE.healed_at = {r.workflow_id: min((a.at for a in scenario.actions if a.kind == "retry"
                                                     and a.workflow_id == r.workflow_id), default=10**12)
                                 for r in scenario.roots}
        for root in scenario.roots:
            start = StartWorkflow(flows.WORKFLOW, JSON.encode([root.script, flows.fresh_carry()]),
                                  reply=ReplyTo(CLIENT, f"start:{root.workflow_id}"))
            self.send(root.workflow_id, f"start:{root.workflow_id}", start, root.start)
        for action in scenario.actions:
            self.send(action.workflow_id, action.action_id, client_message(action), action.at)

    def send(self, workflow_id: str, message_id: str, message: Any, at: int) -> None:
        self.publish(TOPICS.workflow_engine, workflow_id, WorkflowEngineMessage(message_id, workflow_id, at, message),
                     at)

    def publish(self, topic: str, key: str, envelope: Any, due: int) -> None:
        self.seq += 1
        packet = Packet(topic, key, CODEC.encode(envelope), due, self.seq, f"{topic}|{key}|{envelope.message_id}")
        if due <= self.now:
            self.make_ready(packet)
        else:
            heapq.heappush(self.delayed, (due, packet.seq, packet))

    def run(self) -> Network:
        while self.ready or self.delayed:
            if not self.ready:
                self.now = self.delayed[0][0]
                while self.delayed and self.delayed[0][0] <= self.now:
                    self.make_ready(heapq.heappop(self.delayed)[2])
            self.deliveries += 1
            if self.deliveries > MAX_DELIVERIES:
                raise RuntimeError(f"no quiescence after {MAX_DELIVERIES} deliveries")
            self.deliver(self.pick())
        return self

    def make_ready(self, packet: Packet, first: bool = False) -> None:
        """Queue a due message (``first``: ahead of its key, as a redelivery); its rank is drawn per message."""
        packet.rank = self.chance("order", packet)
        packet.jumps = self.chance("disorder", packet) < self.faults.disorder
        self.ready.insert(0 if first else len(self.ready), packet)

    def pick(self) -> Packet:
        heads: dict[tuple[str, str], int] = {}
        for i, packet in enumerate(self.ready):
            heads.setdefault((packet.topic, packet.key), i)
        eligible = set(heads.values()) | {i for i, packet in enumerate(self.ready) if packet.jumps}
        return self.ready.pop(min(eligible, key=lambda i: self.ready[i].rank))

    def deliver(self, packet: Packet) -> None:
        if packet.topic == CLIENT:
            answer = CODEC.decode(ClientMessage, packet.payload)
            self.answers.setdefault(answer.request_id, []).append(answer.message)
            return
        if packet.topic == TOPICS.workflow_engine:
            handled = self.on_workflow(packet)
        elif packet.topic == TOPICS.cancellations:
            handled = self.on_notice(packet)
        elif packet.topic == TOPICS.executor(flows.SERVICE):
            handled = self.on_task(packet)
        else:
            raise AssertionError(f"unexpected topic {packet.topic}")
        if not handled:
            self.make_ready(packet, first=True)  # crashed before the ack: it comes again, first of its key
            return
        if self.chance("duplicate", packet) < self.faults.duplicate:
            self.make_ready(Packet(packet.topic, packet.key, packet.payload, self.now, packet.seq, packet.ident))
        if packet.topic == TOPICS.workflow_engine and self.chance("late", packet) < self.faults.late_duplicate:
            self.seq += 1
            heapq.heappush(self.delayed, (self.now + LATE_MS, self.seq, packet))

    def chance(self, fault: str, packet: Packet) -> float:
        """A number in [0, 1) fixed by the message and how often it came: the same message meets the same
        order and faults in a smaller scenario, which keeps failures that need them while shrinking."""
        key = (fault, packet.ident)
        self.seen[key] = self.seen.get(key, 0) + 1
        digest = hashlib.blake2b(f"{self.salt}/{fault}/{self.seen[key]}/{packet.ident}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big") / 2**64

    def crashed(self, packet: Packet) -> bool:
        return self.chance("crash", packet) < self.faults.crash

    def note(self, topic: str, key: str, what: str) -> None:
        self.trace.history.append((self.now, topic.rsplit("-", 1)[-1], key, what))

    def on_workflow(self, packet: Packet) -> bool:
        envelope = CODEC.decode(WorkflowEngineMessage, packet.payload)
        wid = envelope.workflow_id
        raw = self.states.get(wid)
        state = CODEC.decode(WorkflowState, raw) if raw is not None else None
        flows.PROBE.begin()
        try:
            decision = self.engine.handle(state, envelope, self.now)
        except Exception as exc:  # an engine bug: the runtime would dead-letter the message
            self.trace.crashes.append(f"{describe(envelope.message)} -> {type(exc).__name__}: {exc}")
            self.note(packet.topic, wid, f"{describe(envelope.message)} CRASHED THE ENGINE: {exc!r}")
            return True
        self.trace.nesting_refused |= flows.PROBE.nesting_refused
        for o in decision.outgoing:
            self.publish(o.topic, o.key, o.message, o.deliver_at_ms or self.now)
        message = envelope.message
        run = (wid, run_of(message))
        if run in self.trace.closes and (
                not decision.unchanged or decision.outgoing):
            self.trace.reacted.append(f"{wid}: {describe(message)} at {self.now} ms, after run {run[1]} closed")
        crash = self.crashed(packet)
        after = decision.state if not decision.unchanged else state
        self.note(packet.topic, wid, f"{describe(message)} -> {after.status if after else 'no state'}"
                  f"{' ' + str(len(after.commands)) + ' steps' if after else ''}, sends "
                  f"{[type(o.message.message).__name__ for o in decision.outgoing]}"
                  f"{' CRASH before save' if crash else ''}")
        if crash:
            return False
        if not decision.unchanged and decision.state is not None:
            self.states[wid] = CODEC.encode(decision.state)
            self.saved(state, decision.state, message)
        return True

    def saved(self, old: WorkflowState | None, new: WorkflowState, message: Any) -> None:
        wid, at = new.workflow_id, (self.now, self.deliveries)
        for generation in range(old.generation if old is not None else 0, new.generation):
            self.trace.closes.setdefault((wid, generation), at)
        if new.status != status.RUNNING:
            self.trace.closes.setdefault((wid, new.generation), at)
        if new.parent is not None:
            self.trace.parents[wid] = (new.parent.workflow_id, new.parent.generation)
        if new.cancel_requested:
            self.trace.cancelled.setdefault(wid, self.now)
        if isinstance(message, SendSignal) and message.signal_id in new.signal_ids and (
                old is None or message.signal_id not in old.signal_ids):
            self.trace.accepted.setdefault(wid, []).append(JSON.decode(message.data)[0])
        # What the code saw: a replay from the history records it afresh; a live workflow (the engine's
        # cache) goes on filling the records of the replay it continues, so they are read again.
        for (run_wid, run), records in flows.PROBE.runs.items():
            if run_wid == wid:
                self.records[(wid, run)] = records
        for (run_wid, run), records in self.records.items():
            if run_wid == wid:
                self.trace.consumed[(wid, run)] = flows.seen(records)

    def on_task(self, packet: Packet) -> bool:
        envelope = CODEC.decode(TaskExecutorMessage, packet.payload)
        task = envelope.message
        spec = JSON.decode(task.input)[0]
        done_at = self.now + spec["dur"]
        self.clock.ms = done_at
        flows.PROBE.begin()
        flows.PROBE.now_ms = self.now
        decision = self.executor.handle(None, envelope, self.now)
        for wid, position, generation, attempt, error in flows.PROBE.attempts:
            key = (wid, position, generation, attempt)
            self.trace.attempts.append(Attempt(wid, position, generation, attempt, self.now, spec, error,
                                               key not in self.ran))
            self.ran.add(key)
        for o in decision.outgoing:
            self.publish(o.topic, o.key, o.message, max(o.deliver_at_ms or 0, done_at))
        crash = self.crashed(packet)
        ran = "ran" if flows.PROBE.attempts else "skipped (cancelled)"
        self.note(packet.topic, task.task_id, f"attempt {task.attempt} @{task.generation} {ran}, "
                  f"{[describe(o.message.message) for o in decision.outgoing]}{' CRASH before ack' if crash else ''}")
        return not crash

    def on_notice(self, packet: Packet) -> bool:
        envelope = CODEC.decode(TaskExecutorMessage, packet.payload)
        notice = envelope.message
        assert isinstance(notice, CancelTask)
        self.executor.handle(None, envelope, self.now)
        self.trace.told_to_cancel.add((notice.task_id, notice.generation))
        self.note(packet.topic, notice.task_id, describe(notice))
        return True

    def final_states(self) -> dict[str, WorkflowState]:
        return {wid: CODEC.decode(WorkflowState, raw) for wid, raw in self.states.items()}

    def format_history(self) -> str:
        return "\n".join(f"{at:>8} ms  {topic:<13} {key:<14} {what}" for at, topic, key, what in self.trace.history)


def run_of(message: Any) -> int:
    """The run (generation) a task outcome, timer, child outcome or task retry belongs to; -1 for other messages."""
    if isinstance(message, RUN_MESSAGES):
        return int(message.generation)
    task = getattr(message, "task", None)  # a task's next attempt routed through the workflow engine
    return int(task.generation) if task is not None else -1


def client_message(action: Action) -> Any:
    reply = ReplyTo(CLIENT, action.action_id)
    if action.kind == "signal":
        return SendSignal(action.action_id, action.name, JSON.encode([action.action_id]), reply=reply)
    if action.kind == "update":
        return UpdateWorkflow(UpdateCall(action.action_id, action.name, JSON.encode([action.arg])), reply)
    if action.kind == "cancel":
        return CancelWorkflow("a simulated client cancels", reply=reply)
    return RetryWorkflow(action.action_id, (), reply=reply)
