"""Engines are pure: they import nothing that does I/O, reads clocks or randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pulsarflow.engines

FORBIDDEN = {"time", "socket", "os", "random", "threading", "asyncio", "subprocess", "requests",
             "pulsar", "redis", "logging", "fastavro", "urllib", "http"}


def test_engine_modules_import_no_io() -> None:
    folder = Path(pulsarflow.engines.__file__).parent
    offenders = []
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert len(list(folder.glob("*.py"))) >= 5
