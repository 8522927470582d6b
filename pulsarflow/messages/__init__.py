"""Protocol messages: frozen dataclasses, one per Avro record in ``schemas/``.

Each engine consumes one envelope whose ``message`` field is an Avro union of that
engine's message records (see docs/schemas.md for why). ``RECORD_CLASSES`` maps every
Avro record name to its class; the codec and a test use it to keep both in step.
"""

from pulsarflow.errors import ErrorInfo
from pulsarflow.messages.client import (
    ClientMessage,
    ControlAnswer,
    CustomIdAnswer,
    QueryAnswer,
    SignalAccepted,
    TagIds,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowNotFound,
    WorkflowStatusReply,
)
from pulsarflow.messages.common import DeadLetter, ParentRef, ReplyTo, RetrySpec
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.messages.executor import CancelTask, ExecuteTask, TaskExecutorMessage
from pulsarflow.messages.state import Arrival, Blocked, BufferedSignal, Command, UpdateCall, WorkflowState
from pulsarflow.messages.tags import (
    AddTag,
    ListTagIds,
    RemoveTag,
    StartByCustomId,
    TagEngineMessage,
    TagOperation,
    TagState,
)
from pulsarflow.messages.workflow import (
    CancelWorkflow,
    ChildCompleted,
    ChildFailed,
    CompleteTask,
    GetWorkflowResult,
    GetWorkflowStatus,
    HistoryChunk,
    QueryWorkflow,
    RetryTask,
    RetryWorkflow,
    SendSignal,
    SignalWithStart,
    StartWorkflow,
    TaskCompleted,
    TaskFailed,
    TimerFired,
    UpdateWithStart,
    UpdateWorkflow,
    WorkflowEngineMessage,
)

NAMESPACE = "pulsarflow"

RECORD_CLASSES: dict[str, type] = {
    f"{NAMESPACE}.{cls.__name__}": cls
    for cls in (
        ErrorInfo, RetrySpec, ReplyTo, ParentRef, DeadLetter,
        StartWorkflow, TaskCompleted, TaskFailed, TimerFired, ChildCompleted, ChildFailed,
        SendSignal, GetWorkflowResult, GetWorkflowStatus, CancelWorkflow, RetryWorkflow, QueryWorkflow,
        UpdateWorkflow, UpdateCall, RetryTask, SignalWithStart, UpdateWithStart, CompleteTask,
        WorkflowEngineMessage,
        ExecuteTask, CancelTask, TaskExecutorMessage,
        WorkflowCompleted, WorkflowFailed, WorkflowStatusReply, SignalAccepted, WorkflowNotFound, ControlAnswer,
        QueryAnswer, TagIds, CustomIdAnswer,
        AddTag, RemoveTag, TagOperation, ListTagIds, StartByCustomId, TagEngineMessage, TagState,
        ClientMessage,
        Command, Arrival, BufferedSignal, Blocked, WorkflowState, HistoryChunk,
        WorkflowEvent,
    )
}

__all__ = [
    "AddTag", "Arrival", "Blocked", "BufferedSignal", "CancelTask", "CancelWorkflow", "ChildCompleted",
    "ChildFailed", "ClientMessage", "Command", "CompleteTask", "ControlAnswer", "CustomIdAnswer", "DeadLetter",
    "ErrorInfo", "ExecuteTask", "GetWorkflowResult", "GetWorkflowStatus", "HistoryChunk", "ListTagIds", "NAMESPACE",
    "ParentRef",
    "QueryAnswer", "QueryWorkflow", "RECORD_CLASSES", "RemoveTag", "ReplyTo", "RetrySpec", "RetryTask",
    "RetryWorkflow", "SendSignal", "SignalAccepted", "SignalWithStart", "StartByCustomId", "StartWorkflow",
    "TagEngineMessage", "TagIds", "TagOperation", "TagState", "TaskCompleted", "TaskExecutorMessage", "TaskFailed",
    "TimerFired", "UpdateCall", "UpdateWithStart", "UpdateWorkflow", "WorkflowCompleted", "WorkflowEngineMessage",
    "WorkflowEvent", "WorkflowFailed", "WorkflowNotFound", "WorkflowState", "WorkflowStatusReply",
]
