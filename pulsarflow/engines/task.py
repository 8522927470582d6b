"""The task engine: what follows one task attempt (retry later, or report to the workflow).

Its state (attempt number, first attempt time, retry policy) travels inside
``ExecuteTask``, so it needs no state store and no extra hop: the executor that ran the
attempt applies this pure decision and publishes the result. See docs/architecture.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from pulsarflow.engines import messages_out as out
from pulsarflow.engines.outgoing import Outgoing
from pulsarflow.errors import ErrorInfo
from pulsarflow.messages import ExecuteTask, RetrySpec, TaskCompleted, TaskFailed
from pulsarflow.topics import Topics


def retry_delay_ms(policy: RetrySpec, attempt: int, task_id: str) -> int:
    """Delay before attempt ``attempt + 1``: exponential, capped, with deterministic jitter."""
    base = min(policy.initial_delay_ms * policy.backoff_coefficient ** (attempt - 1), policy.max_delay_ms)
    digest = hashlib.sha256(f"{task_id}:{attempt}".encode()).digest()
    unit = int.from_bytes(digest[:4], "big") / 2**32  # in [0, 1), the same on every replay
    return int(base * (1 - policy.jitter * unit))


def should_retry(policy: RetrySpec, attempt: int, error: ErrorInfo) -> bool:
    return attempt < policy.max_attempts and error.type not in policy.non_retryable


def after_success(topics: Topics, task: ExecuteTask, result: bytes, now: int) -> list[Outgoing]:
    completed = TaskCompleted(task.position, result, task.attempt, task.generation)
    return [out.to_workflow(topics, task.workflow_id, completed, now)]


def after_failure(topics: Topics, task: ExecuteTask, error: ErrorInfo, now: int) -> list[Outgoing]:
    """Retry with backoff while the policy allows; otherwise report the final failure."""
    if should_retry(task.retry, task.attempt, error):
        delay = retry_delay_ms(task.retry, task.attempt, task.task_id)
        retry = replace(task, attempt=task.attempt + 1)
        return [out.to_executor(topics, retry, now, deliver_at_ms=now + delay)]
    final = replace(error, task_name=task.task_name, attempts=task.attempt, workflow_id=task.workflow_id)
    return [out.to_workflow(topics, task.workflow_id, TaskFailed(task.position, final, task.generation), now)]
