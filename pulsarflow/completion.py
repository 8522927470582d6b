"""Completion from outside: a task hands back a token, and any process completes the step later.

Inside a task::

    token = pulsarflow.task_info().completion_token   # give it to a person, a webhook...
    pulsarflow.complete_later()                       # the attempt ends; the step stays open

Later, anywhere with a client::

    client.complete_task(token, result)   # or client.fail_task(token, "why")

The token names the step (workflow id, position, run, task name); the workflow engine takes
an outcome only while that step still waits for it, so a token is good for one outcome, and
one of an earlier run (before a retry or continue-as-new) is refused. The task's per-attempt
``timeout`` ends with the attempt that handed the token back: bound the wait with the task's
``overall_timeout`` (or a timer in the workflow).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from pulsarflow.errors import DefinitionError

PREFIX = "pft1."  # the format's version: a later one may carry more


class CompleteLater(Exception):
    """Raised by :func:`complete_later`: this attempt's outcome will be given from outside."""


def complete_later() -> None:
    """End this task attempt without an outcome: ``client.complete_task(token, ...)`` gives it later."""
    raise CompleteLater("the outcome of this attempt will be given with its completion token")


@dataclass(frozen=True)
class CompletionToken:
    workflow_id: str
    position: int
    generation: int
    task_name: str

    def encode(self) -> str:
        body = json.dumps([self.workflow_id, self.position, self.generation, self.task_name], separators=(",", ":"))
        return PREFIX + base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> CompletionToken:
        """The token's fields; DefinitionError saying what is wrong with a token that is not one."""
        if not isinstance(token, str) or not token.startswith(PREFIX):
            raise DefinitionError(f"{str(token)[:40]!r} is not a completion token: one starts with {PREFIX!r} "
                                  "(get it from pulsarflow.task_info().completion_token inside the task)")
        text = token[len(PREFIX):]
        try:
            fields = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            workflow_id, position, generation, task_name = fields
            if not (isinstance(workflow_id, str) and isinstance(position, int) and isinstance(generation, int)
                    and isinstance(task_name, str)) or isinstance(position, bool) or position < 0:
                raise ValueError("fields of the wrong type")
        except (ValueError, TypeError) as exc:
            raise DefinitionError(f"completion token {token[:40]!r}... is damaged ({exc}): pass it exactly as "
                                  "the task gave it") from exc
        return cls(workflow_id, position, generation, task_name)
