"""The deploy tool starts a new function with parallelism > 1 at one instance first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pulsarflow.deploy import tool
from pulsarflow.errors import BackendError


class FakeAdmin:
    """Records create/update calls; a function runs ``running`` instances once created."""

    def __init__(self, exists: bool = False, running: int = 1) -> None:
        self.exists, self.running = exists, running
        self.calls: list[tuple[str, int]] = []

    def function(self, tenant: str, namespace: str, name: str) -> dict[str, Any] | None:
        return {"name": name} if self.exists else None

    def create_or_update(self, config: dict[str, Any], package: Path) -> str:
        self.calls.append(("updated" if self.exists else "created", config["parallelism"]))
        answer = "updated" if self.exists else "created"
        self.exists = True
        return answer

    def function_status(self, tenant: str, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append(("status", self.running))
        return {"numRunning": self.running}


CONFIG = {"tenant": "public", "namespace": "default", "name": "app-workflow-engine", "parallelism": 3}


def test_a_new_parallel_function_starts_with_one_instance_then_grows() -> None:
    admin = FakeAdmin()
    assert tool.create_or_update(admin, CONFIG, Path("f.zip")) == "created"  # type: ignore[arg-type]
    assert admin.calls == [("created", 1), ("status", 1), ("updated", 3)]


def test_an_existing_function_is_updated_at_once() -> None:
    admin = FakeAdmin(exists=True)
    assert tool.create_or_update(admin, CONFIG, Path("f.zip")) == "updated"  # type: ignore[arg-type]
    assert admin.calls == [("updated", 3)]


def test_a_single_instance_function_is_created_directly() -> None:
    admin = FakeAdmin()
    tool.create_or_update(admin, {**CONFIG, "parallelism": 1}, Path("f.zip"))  # type: ignore[arg-type]
    assert admin.calls == [("created", 1)]


def test_a_first_instance_that_never_starts_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tool, "FIRST_INSTANCE_TIMEOUT_S", 0.3)
    admin = FakeAdmin(running=0)
    with pytest.raises(BackendError, match=r"first instance of app-workflow-engine did not start .*logs/functions"):
        tool.create_or_update(admin, CONFIG, Path("f.zip"))  # type: ignore[arg-type]
    assert ("updated", 3) not in admin.calls
