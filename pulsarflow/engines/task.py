"""The task engine: what follows one task attempt (retry later, or report to the workflow).

Its state (attempt number, first attempt time, retry policy) travels inside
``ExecuteTask``, so it needs no state store: the executor that ran the attempt applies
this pure decision and publishes the result. A retry costs one hop through the workflow
engine, which drops it if the step no longer waits. See docs/architecture.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from pulsarflow.engines import messages_out as out
from pulsarflow.engines.outgoing import Outgoing
from pulsarflow.errors import ErrorInfo
from pulsarflow.messages import ExecuteTask, RetrySpec, RetryTask, TaskCompleted, TaskFailed
from pulsarflow.topics import Topics

# Heartbeat details travel inside the next attempt's ExecuteTask, next to the task's input: past
# this size they are dropped (the next attempt starts without them) rather than make the retry
# too large for the broker, which would refuse it and leave the step waiting for good.
MAX_HEARTBEAT_DETAILS_BYTES = 256 * 1024


def retry_delay_ms(policy: RetrySpec, attempt: int, task_id: str) -> int:
    """Delay before attempt ``attempt + 1``: exponential, capped, with deterministic jitter."""
    base = min(policy.initial_delay_ms * policy.backoff_coefficient ** (attempt - 1), policy.max_delay_ms)
    digest = hashlib.sha256(f"{task_id}:{attempt}".encode()).digest()
    unit = int.from_bytes(digest[:4], "big") / 2**32  # in [0, 1), the same on every replay
    return int(base * (1 - policy.jitter * unit))


def should_retry(policy: RetrySpec, attempt: int, error: ErrorInfo) -> bool:
    """Another attempt is due unless attempts ran out or the error is non-retryable (subclasses too)."""
    return attempt < policy.max_attempts and not error.non_retryable and not error.matches(*policy.non_retryable)


def after_success(topics: Topics, task: ExecuteTask, result: bytes, now: int) -> list[Outgoing]:
    completed = TaskCompleted(task.position, result, task.attempt, task.generation)
    return [out.to_workflow(topics, task.workflow_id, completed, now)]


def after_failure(topics: Topics, task: ExecuteTask, error: ErrorInfo, now: int) -> list[Outgoing]:
    """Retry with backoff while the policy allows; otherwise report the final failure.

    The next attempt goes back through the workflow engine after the delay (``RetryTask``),
    which sends it on only if the workflow still waits for this step: a retry never runs
    after its workflow closed, or after the step timed out or was cancelled.
    """
    if should_retry(task.retry, task.attempt, error):
        delay = error.next_retry_delay_ms
        if delay is None:
            delay = retry_delay_ms(task.retry, task.attempt, task.task_id)
        details = task.heartbeat_details
        if details is not None and len(details) > MAX_HEARTBEAT_DETAILS_BYTES:
            details = None
        retry = RetryTask(replace(task, attempt=task.attempt + 1, heartbeat_details=details))
        return [out.to_workflow(topics, task.workflow_id, retry, now, deliver_at_ms=now + delay,
                                about=f":{task.attempt + 1}")]
    final = replace(error, task_name=task.task_name, attempts=task.attempt, workflow_id=task.workflow_id)
    return [out.to_workflow(topics, task.workflow_id, TaskFailed(task.position, final, task.generation), now)]
