"""Replay recorded histories against new workflow code, before deploying it.

A history is a stored ``WorkflowState`` (its commands and step outcomes). Replaying it
with the new code must issue the same steps in the same order; a change that does not
is reported with the workflow, the first diverging position, and what the history has
and what the code now does. Guard such a change with ``ctx.patched(...)``.

Histories come as files of Avro-encoded state (``*.wfstate``): write them with
:func:`save_history` (or ``TestEnvironment.save_history``) from any state store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter, PayloadConverter
from pulsarflow.errors import DecodeError, DefinitionError, NonDeterminismError
from pulsarflow.interpreter.registry import Registry
from pulsarflow.interpreter.replay import Replay
from pulsarflow.messages import WorkflowState
from pulsarflow.messages import client as status

SUFFIX = ".wfstate"


@dataclass(frozen=True)
class ReplayResult:
    workflow_id: str
    workflow_name: str
    ok: bool
    detail: str
    position: int | None = None

    def describe(self) -> str:
        verdict = "ok" if self.ok else "DIVERGES"
        return f"{verdict:8} {self.workflow_name} {self.workflow_id}: {self.detail}"


def check(history: WorkflowState, registry: Registry, converter: PayloadConverter | None = None) -> ReplayResult:
    """Replay one history with the registry's code; never raises for a divergence."""
    name, wid = history.workflow_name, history.workflow_id
    try:
        definition = registry.workflow(name)
    except DefinitionError as exc:
        return ReplayResult(wid, name, False, str(exc))
    new_steps: list[str] = []

    def on_new_step(position: int, request: object, now: int) -> None:
        new_steps.append(f"{getattr(request, 'kind', '?').lower()} {getattr(request, 'name', '')!r} at {position}")

    replay = Replay(history, definition, converter or JsonConverter(), on_new_step)
    replay.run()
    if isinstance(replay.fatal, NonDeterminismError):
        fatal = replay.fatal
        return ReplayResult(wid, name, False, f"step {fatal.position}: history has {fatal.expected}, "
                                              f"code now issues {fatal.found}", fatal.position)
    if replay.fatal is not None:
        return ReplayResult(wid, name, False, f"replay failed: {type(replay.fatal).__name__}: {replay.fatal}")
    closed = history.status != status.RUNNING
    if closed and new_steps:
        return ReplayResult(wid, name, False, f"the history ended but the code now issues {new_steps[0]}",
                            len(history.commands))
    if closed and not replay.finished and history.status != status.CANCELLED:
        return ReplayResult(wid, name, False, "the history ended but the code now waits for more")
    return ReplayResult(wid, name, True, f"{len(history.commands)} steps replayed")


def check_all(histories: Iterable[WorkflowState], registry: Registry,
              converter: PayloadConverter | None = None) -> list[ReplayResult]:
    return [check(h, registry, converter) for h in histories]


def save_history(state: WorkflowState, folder: Path, codec: Codec | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{state.workflow_id.replace('/', '~')}{SUFFIX}"
    path.write_bytes((codec or Codec()).encode(state))
    return path


def load_histories(paths: Iterable[Path], codec: Codec | None = None) -> list[WorkflowState]:
    """Read ``*.wfstate`` files (folders are searched); a file that does not decode is an error naming it."""
    codec = codec or Codec()
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob(f"*{SUFFIX}")) if path.is_dir() else [path])
    histories = []
    for file in files:
        try:
            histories.append(codec.decode(WorkflowState, file.read_bytes()))
        except DecodeError as exc:
            raise DecodeError(exc.schema, exc.size, f"{file}: {exc.reason}") from exc
    return histories
