"""Finding the user's tasks and workflows by module name (for functions and workers)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from pulsarflow.errors import DefinitionError
from pulsarflow.interpreter.definitions import TASK_ATTR, WORKFLOW_ATTR
from pulsarflow.interpreter.registry import Registry


def load_registry(modules: Iterable[str]) -> Registry:
    """Import each module and register every decorated task and workflow it defines."""
    registry = Registry()
    for name in (m.strip() for m in modules if m.strip()):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise DefinitionError(f"cannot import user module {name!r}: {exc}; package it with the "
                                  "deploy tool or install it next to pulsarflow") from exc
        found = [v for v in vars(module).values()
                 if getattr(v, TASK_ATTR, None) is not None or getattr(v, WORKFLOW_ATTR, None) is not None]
        registry.register(*found)
    return registry
