"""Topic names, all derived from one prefix (tenant/namespace/app)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """Names of the topics one pulsarflow application uses."""

    tenant: str = "public"
    namespace: str = "default"
    app: str = "pulsarflow"

    @property
    def prefix(self) -> str:
        return f"persistent://{self.tenant}/{self.namespace}/{self.app}"

    @property
    def workflow_engine(self) -> str:
        return f"{self.prefix}-workflow-engine"

    @property
    def tag_engine(self) -> str:
        return f"{self.prefix}-tag-engine"

    def executor(self, service: str) -> str:
        return f"{self.prefix}-tasks-{service}"

    @property
    def cancellations(self) -> str:
        """Broadcast of task cancellations: every executor reads all of it (non-persistent)."""
        return f"non-persistent://{self.tenant}/{self.namespace}/{self.app}-cancellations"

    def client(self, client_id: str) -> str:
        return f"non-persistent://{self.tenant}/{self.namespace}/{self.app}-client-{client_id}"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}-dead-letters"

    @property
    def events(self) -> str:
        """Every event of every workflow of the app, keyed by workflow id (see pulsarflow.events)."""
        return f"{self.prefix}-events"

    def subscription(self, engine: str) -> str:
        """The subscription an engine's consumers share: functions and ``pulsarflow worker`` alike."""
        return f"{self.app}-{engine}"

    def envelopes(self, services: Iterable[str] = ()) -> dict[str, str]:
        """The record each persistent topic of the app carries (its schema in the registry), by topic."""
        out = {self.workflow_engine: "WorkflowEngineMessage", self.tag_engine: "TagEngineMessage",
               self.dead_letters: "DeadLetter", self.events: "WorkflowEvent"}
        out.update({self.executor(s): "TaskExecutorMessage" for s in services})
        return out
