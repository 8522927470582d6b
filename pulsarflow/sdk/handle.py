"""A handle on one workflow: its result, and the requests about it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pulsarflow.converter import decode_one
from pulsarflow.errors import WorkflowCancelledError, WorkflowFailedError
from pulsarflow.interpreter.definitions import WorkflowDefinition
from pulsarflow.messages import GetWorkflowResult, WorkflowCompleted, WorkflowFailed
from pulsarflow.sdk.base import WorkflowDescription

if TYPE_CHECKING:
    from pulsarflow.sdk.client import Client


class WorkflowHandle:
    """A started (or looked-up) workflow."""

    def __init__(self, client: Client, workflow_id: str, definition: WorkflowDefinition | None,
                 request_id: str | None) -> None:
        self.client = client
        self.id = workflow_id
        self.definition = definition
        self._request_id = request_id
        self._answer: Any = None

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the result; raises WorkflowFailedError (with the cause chain) if it failed.

        ``timeout`` is in real (wall-clock) seconds on every runtime, None to wait as long as it
        takes. On a ``TestEnvironment`` the virtual clock skips from timer to timer meanwhile, so
        a workflow that sleeps for days answers within any timeout. Raises ResultTimeoutError,
        saying what happened, when the timeout passes, or at once when the embedded runtime has
        nothing left to run (the workflow waits for a signal or an update nobody sends).
        """
        if self._answer is None:
            if self._request_id is None:
                reply = self.client._reply_to()
                self.client._send(self.id, GetWorkflowResult(reply))
                self._request_id = reply.request_id
            self._answer = self.client._await(self._request_id, self.id, timeout)
        answer = self._answer
        if isinstance(answer, WorkflowFailed):
            if answer.error.type == WorkflowCancelledError.__name__ and answer.error.workflow_id == self.id:
                raise WorkflowCancelledError(self.id, answer.error)
            raise WorkflowFailedError(self.id, answer.error)
        answer = self.client._expect(answer, WorkflowCompleted)
        hint = self.definition.return_hint if self.definition else None
        return decode_one(self.client.converter, answer.result, hint)

    @property
    def request_id(self) -> str | None:
        """Id under which this handle's answer arrives (None until a result is requested)."""
        return self._request_id

    def done(self) -> bool:
        """True once the result (or failure) has arrived; never blocks."""
        return self._answer is not None or (self._request_id is not None and self._request_id in self.client._answers)

    def signal(self, name: str, data: Any = None) -> None:
        self.client.signal(self.id, name, data)

    def status(self) -> WorkflowDescription:
        return self.client.status(self.id)

    def query(self, name: str, *args: Any) -> Any:
        return self.client.query(self.id, name, *args)

    def update(self, name: str, *args: Any) -> Any:
        return self.client.update(self.id, name, *args)

    def cancel(self, reason: str = "cancelled by a client") -> str:
        return self.client.cancel(self.id, reason)

    def retry(self, positions: tuple[int, ...] = ()) -> str:
        """Resume this failed workflow; ``result()`` then waits for the new outcome."""
        detail = self.client.retry(self.id, positions)
        self._answer, self._request_id = None, None
        return detail
