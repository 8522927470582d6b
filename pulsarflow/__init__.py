"""pulsarflow: durable workflows as plain Python code, on Apache Pulsar.

Declare tasks with ``@task`` and workflows with ``@workflow``; run them embedded with
``EmbeddedEnvironment`` (or ``pulsarflow.testing.TestEnvironment`` in tests), or on
Pulsar with the engines deployed as Pulsar Functions.
"""

from pulsarflow import schedules
from pulsarflow.completion import complete_later
from pulsarflow.embedded import EmbeddedEnvironment
from pulsarflow.errors import (
    ApplicationError,
    ChildWorkflowFailedError,
    ControlRefusedError,
    DefinitionError,
    ErrorInfo,
    NonDeterminismError,
    NotInTaskError,
    PulsarflowError,
    QueryFailedError,
    ResultTimeoutError,
    SandboxViolationError,
    ScheduleError,
    SerializationError,
    SignalTimeoutError,
    StepCancelledError,
    TaskFailedError,
    TaskTimeoutError,
    UpdateFailedError,
    WorkflowBlockedError,
    WorkflowCancelledError,
    WorkflowError,
    WorkflowFailedError,
    WorkflowNotFoundError,
)
from pulsarflow.interpreter.context import WorkflowContext
from pulsarflow.interpreter.definitions import RetryPolicy, task, workflow
from pulsarflow.runtime.task_info import TaskInfo, heartbeat, task_info
from pulsarflow.sdk.client import Client, WorkflowDescription, WorkflowHandle

__version__ = "0.4.0"

__all__ = [
    "ApplicationError", "ChildWorkflowFailedError", "Client", "ControlRefusedError", "DefinitionError",
    "EmbeddedEnvironment", "ErrorInfo", "NonDeterminismError", "NotInTaskError", "PulsarflowError", "QueryFailedError",
    "ResultTimeoutError", "RetryPolicy", "SandboxViolationError", "ScheduleError", "SerializationError",
    "SignalTimeoutError", "StepCancelledError", "TaskFailedError", "TaskInfo", "TaskTimeoutError", "UpdateFailedError",
    "WorkflowBlockedError", "WorkflowCancelledError", "WorkflowContext", "WorkflowDescription", "WorkflowError",
    "WorkflowFailedError", "WorkflowHandle", "WorkflowNotFoundError", "complete_later", "heartbeat", "task",
    "task_info", "schedules", "workflow",
]
