"""Detects, while workflow code runs, the calls that would break deterministic replay.

Detected: ``time.time``/``time_ns``/``sleep``, the module-level functions of ``random``,
``uuid.uuid1``/``uuid4``, and (through an audit hook) sockets, subprocesses and files
opened for writing. Allowed: the standard library's logging (it reads the clock and may
open a log file) and finalizers that garbage collection runs meanwhile. Not detected
(documented in docs/workflows.md): ``datetime.now()``,
names imported before the guard was installed (``from time import time``), module-level
state, threads and C extensions doing I/O. Outside workflow code every guard delegates
to the original function, so tasks and the rest of the process are unaffected.
"""

from __future__ import annotations

import contextvars
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pulsarflow.errors import SandboxViolationError

Report = Callable[[SandboxViolationError], None]
_in_workflow: contextvars.ContextVar[tuple[str, Report] | None] = contextvars.ContextVar(
    "pulsarflow_workflow", default=None)
_installed = False

_ADVICE = {
    "time": "use ctx.now()", "time_ns": "use ctx.now()", "sleep": "use await ctx.sleep(...)",
    "uuid1": "use ctx.uuid4()", "uuid4": "use ctx.uuid4()",
}
_AUDITED = {"socket.connect": "network I/O", "subprocess.Popen": "a subprocess", "os.system": "a shell command"}


@contextmanager
def workflow_code(workflow_id: str, report: Report) -> Iterator[None]:
    """Marks the current context as running workflow code; violations are also given to ``report``
    so that workflow code cannot hide them by catching the exception."""
    install()
    token = _in_workflow.set((workflow_id, report))
    try:
        yield
    finally:
        _in_workflow.reset(token)


def install() -> None:
    """Install the guards once per process (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    for module, name in [(time, "time"), (time, "time_ns"), (time, "sleep"), (uuid, "uuid1"), (uuid, "uuid4")]:
        setattr(module, name, _guard(getattr(module, name), f"{module.__name__}.{name}", _ADVICE[name]))
    for name in ("random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform", "gauss"):
        setattr(random, name, _guard(getattr(random, name), f"random.{name}", "use ctx.random()"))
    sys.addaudithook(_audit)


def _guard(original: Callable[..., Any], label: str, advice: str) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        current = _in_workflow.get()
        if current is not None and not _on_behalf_of_the_process(sys._getframe(1)):
            _violate(current, f"workflow {current[0]!r} called {label}(), which differs on every replay: "
                              f"{advice}, or move the code into a task")
        return original(*args, **kwargs)

    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    return guarded


def _violate(current: tuple[str, Report], message: str) -> None:
    error = SandboxViolationError(message)
    current[1](error)
    raise error


# Code that runs inside workflow code without being the workflow's decision: the standard
# library's logging (a record's timestamp, a log file opened on first use), and finalizers
# (``__del__``, weakref callbacks) that garbage collection happens to run at that moment.
_PROCESS_MODULES = ("logging", "weakref")
_FRAMES_LOOKED_AT = 40


def _on_behalf_of_the_process(frame: Any) -> bool:
    for _ in range(_FRAMES_LOOKED_AT):
        if frame is None:
            return False
        module = str(frame.f_globals.get("__name__", ""))
        if frame.f_code.co_name == "__del__" or module.split(".", 1)[0] in _PROCESS_MODULES:
            return True
        frame = frame.f_back
    return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    current = _in_workflow.get()
    if current is None:
        return
    what = _AUDITED.get(event)
    if what is None and event == "open" and len(args) > 1 and isinstance(args[1], str) and set(args[1]) & set("wax+"):
        what = "a file write"
    if what is not None and not _on_behalf_of_the_process(sys._getframe(1)):
        _violate(current, f"workflow {current[0]!r} attempted {what} ({event}); "
                          "I/O belongs in a task: call it with await ctx.task(...)")


@contextmanager
def outside_workflow() -> Iterator[None]:
    """Lifts the guards, for code the engine runs on the workflow's behalf (side effects)."""
    token = _in_workflow.set(None)
    try:
        yield
    finally:
        _in_workflow.reset(token)
