"""The tasks and workflows a worker knows, by name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pulsarflow.errors import DefinitionError
from pulsarflow.interpreter.definitions import (
    TASK_ATTR,
    WORKFLOW_ATTR,
    TaskDefinition,
    WorkflowDefinition,
    task_definition,
    workflow_definition,
)


class Registry:
    """Task and workflow definitions by name. Registering the same name twice is an error."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.tasks: dict[str, TaskDefinition] = {}
        self.workflows: dict[str, WorkflowDefinition] = {}
        self.register(*items)

    def register(self, *items: Any) -> None:
        for item in items:
            if getattr(item, WORKFLOW_ATTR, None) is not None:
                self._add(self.workflows, workflow_definition(item), "workflow")
            elif getattr(item, TASK_ATTR, None) is not None:
                self._add(self.tasks, task_definition(item), "task")
            else:
                raise DefinitionError(
                    f"cannot register {getattr(item, '__qualname__', item)!r}: "
                    "decorate it with @pulsarflow.task or @pulsarflow.workflow")

    def task(self, name: str) -> TaskDefinition:
        try:
            return self.tasks[name]
        except KeyError:
            raise DefinitionError(
                f"unknown task {name!r}; registered tasks: {sorted(self.tasks) or 'none'}. "
                "Register it with the worker that serves its service") from None

    def workflow(self, name: str) -> WorkflowDefinition:
        try:
            return self.workflows[name]
        except KeyError:
            raise DefinitionError(
                f"unknown workflow {name!r}; registered workflows: {sorted(self.workflows) or 'none'}. "
                "Register it with the worker") from None

    def services(self) -> set[str]:
        return {t.service for t in self.tasks.values()}

    @staticmethod
    def _add(table: dict[str, Any], defn: Any, kind: str) -> None:
        existing = table.get(defn.name)
        if existing is not None and existing.fn is not defn.fn:
            raise DefinitionError(f"two different {kind}s are named {defn.name!r}; give one a name= of its own")
        table[defn.name] = defn
