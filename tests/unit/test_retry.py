from __future__ import annotations

from pulsarflow.engines import task as task_engine
from pulsarflow.errors import ErrorInfo
from pulsarflow.messages import ExecuteTask, RetrySpec, TaskFailed
from pulsarflow.topics import Topics

POLICY = RetrySpec(max_attempts=5, initial_delay_ms=1000, backoff_coefficient=2.0, max_delay_ms=5000,
                   jitter=0.0, non_retryable=("KeyError",))


def test_exponential_backoff_is_capped() -> None:
    delays = [task_engine.retry_delay_ms(POLICY, attempt, "t") for attempt in range(1, 6)]
    assert delays == [1000, 2000, 4000, 5000, 5000]


def test_jitter_is_deterministic_and_bounded() -> None:
    jittery = RetrySpec(5, 1000, 2.0, 60_000, 0.5, ())
    a = [task_engine.retry_delay_ms(jittery, 1, f"task-{i}") for i in range(50)]
    assert a == [task_engine.retry_delay_ms(jittery, 1, f"task-{i}") for i in range(50)]
    assert all(500 <= d <= 1000 for d in a) and len(set(a)) > 10


def test_failure_schedules_a_delayed_retry_then_reports_the_final_error() -> None:
    task = ExecuteTask("w", 2, "svc", "charge", b"[]", 1, 0, POLICY)
    boom = ErrorInfo("ValueError", "boom")
    [retry] = task_engine.after_failure(Topics(), task, boom, now=100)
    # the next attempt goes back through the workflow engine, which sends it on only if the step still waits
    assert retry.topic == Topics().workflow_engine and retry.key == "w"
    assert retry.deliver_at_ms == 1100 and retry.message.message.task.attempt == 2
    last = ExecuteTask("w", 2, "svc", "charge", b"[]", 5, 0, POLICY)
    [final] = task_engine.after_failure(Topics(), last, boom, now=100)
    failed = final.message.message
    assert isinstance(failed, TaskFailed) and failed.error.attempts == 5 and failed.error.task_name == "charge"


def test_non_retryable_error_is_final_at_the_first_attempt() -> None:
    task = ExecuteTask("w", 0, "svc", "charge", b"[]", 1, 0, POLICY)
    [final] = task_engine.after_failure(Topics(), task, ErrorInfo("KeyError", "k"), now=0)
    assert isinstance(final.message.message, TaskFailed)
