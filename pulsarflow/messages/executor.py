"""Messages consumed by task executors, keyed by task id."""

from __future__ import annotations

from dataclasses import dataclass

from pulsarflow.messages.common import RetrySpec


def step_task_id(workflow_id: str, position: int) -> str:
    """Id of the task step at ``position`` of a workflow (``client.retry_task`` takes it)."""
    return f"{workflow_id}/{position}"


@dataclass(frozen=True, slots=True)
class ExecuteTask:
    workflow_id: str
    position: int
    service: str
    task_name: str
    input: bytes
    attempt: int
    first_attempt_at_ms: int
    retry: RetrySpec
    attempt_timeout_ms: int | None = None
    generation: int = 0
    heartbeat_details: bytes | None = None  # the previous attempt's last pulsarflow.heartbeat(details)
    trace: str | None = None  # W3C traceparent of the workflow's trace
    priority: int = 0  # higher starts first among attempts that flow control holds back (runtime/flow*.py)
    deferrals: int = 0  # times flow control put this attempt back (its service's limit was reached)

    @property
    def task_id(self) -> str:
        return step_task_id(self.workflow_id, self.position)


@dataclass(frozen=True, slots=True)
class CancelTask:
    workflow_id: str
    position: int
    reason: str
    generation: int = 0

    @property
    def task_id(self) -> str:
        return step_task_id(self.workflow_id, self.position)


@dataclass(frozen=True, slots=True)
class TaskExecutorMessage:
    message_id: str
    task_id: str
    sent_at_ms: int
    message: ExecuteTask | CancelTask
