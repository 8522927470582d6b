"""Import contracts: the layers of docs/architecture.md point one way.

messages → codec → interpreter → engines → runtime → adapters (embedded, Pulsar, Redis) →
sdk/cli. Every import in the library is checked, the ones inside functions too, so a
shortcut taken in a hurry fails here with the module and the line that took it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pulsarflow

ROOT = Path(pulsarflow.__file__).parent

BASE = ("pulsarflow.errors", "pulsarflow.messages", "pulsarflow.topics", "pulsarflow.clock", "pulsarflow.schemas",
        "pulsarflow.evolution", "pulsarflow.converter", "pulsarflow.failures", "pulsarflow.codec",
        "pulsarflow.redaction")
# (pulsarflow.functions, .worker, .connection and .connection_check: the 0.3 paths of pulsarflow.pulsar's modules)
ADAPTERS = ("pulsarflow.embedded", "pulsarflow.pulsar", "pulsarflow.functions", "pulsarflow.worker",
            "pulsarflow.connection", "pulsarflow.connection_check", "pulsarflow.storage.", "pulsarflow.transport.")
APPLICATIONS = ("pulsarflow.sdk", "pulsarflow.cli", "pulsarflow.deploy", "pulsarflow.dashboard",
                "pulsarflow.visibility", "pulsarflow.testing", "pulsarflow.schedules", "pulsarflow.scaffold",
                "pulsarflow.replaycheck")
ABOVE_INTERPRETER = ("pulsarflow.engines", "pulsarflow.runtime", "pulsarflow.events", "pulsarflow.storage",
                     "pulsarflow.transport", "pulsarflow.usercode", *ADAPTERS, *APPLICATIONS)

# (who, what it must not import, why)
CONTRACTS = [
    (BASE, ("pulsarflow.interpreter", *ABOVE_INTERPRETER), "messages and the codec are the bottom layer"),
    (("pulsarflow.interpreter",), ABOVE_INTERPRETER, "the interpreter runs workflow code and knows no engine"),
    (("pulsarflow.engines",), ("pulsarflow.runtime", "pulsarflow.events", "pulsarflow.storage",
                               "pulsarflow.transport", "pulsarflow.codec", "pulsarflow.usercode", *ADAPTERS,
                               *APPLICATIONS), "engines are pure decisions over state and one message"),
    (("pulsarflow.runtime", "pulsarflow.events"), (*ADAPTERS, *APPLICATIONS),
     "the runtime sees backends through their ports (pulsarflow.storage, pulsarflow.transport) only"),
    (ADAPTERS, ("pulsarflow.sdk.", "pulsarflow.cli", "pulsarflow.deploy", "pulsarflow.dashboard",
                "pulsarflow.scaffold"), "adapters run the engines; the tools sit above them"),
    (("pulsarflow.sdk",), ("pulsarflow.engines", "pulsarflow.storage", "pulsarflow.transport", *ADAPTERS,
                           "pulsarflow.deploy", "pulsarflow.cli", "pulsarflow.dashboard"),
     "a client reaches the engines through its Connection only"),
]
# Adapters that build a whole runtime or client for the user (the composition roots).
ROOTS = {"pulsarflow.embedded": ("pulsarflow.sdk.",), "pulsarflow.pulsar.worker": ("pulsarflow.sdk.",),
         "pulsarflow.testing": ()}


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> list[tuple[str, str, int]]:
    found = []
    for path in ROOT.rglob("*.py"):
        importer = module_of(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(importer, a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((importer, node.module, node.lineno))
                found += [(importer, f"{node.module}.{a.name}", node.lineno) for a in node.names
                          if node.module == "pulsarflow"]
    return found


def matches(module: str, prefixes: tuple[str, ...]) -> bool:
    """``a.b`` matches ``a.b`` and ``a.b.c``; ``a.b.`` (with the dot) only the modules below ``a.b``."""
    return any(module.startswith(p) if p.endswith(".") else module == p or module.startswith(p + ".")
               for p in prefixes)


@pytest.mark.parametrize(("who", "forbidden", "why"), CONTRACTS, ids=[c[2] for c in CONTRACTS])
def test_layers_import_one_way(who: tuple[str, ...], forbidden: tuple[str, ...], why: str) -> None:
    broken = [f"{importer}:{line} imports {target}" for importer, target, line in imports()
              if matches(importer, who) and matches(target, forbidden)
              and not matches(target, ROOTS.get(importer, ()) or ("-",))]
    assert broken == [], f"{why}:\n  " + "\n  ".join(broken)


def test_the_contracts_see_the_imports() -> None:
    found = imports()
    assert ("pulsarflow.engines.workflow", "pulsarflow.interpreter.context") in {(i, t) for i, t, _ in found}
    lazy = ("pulsarflow.cli_deadletters", "pulsarflow.pulsar.engine_worker")
    assert lazy in {(i, t) for i, t, _ in found}
    assert matches("pulsarflow.storage.redis", ("pulsarflow.storage.",))
    assert not matches("pulsarflow.storage", ("pulsarflow.storage.",))
    assert matches("pulsarflow.sdk.client", ("pulsarflow.sdk",)) and not matches("pulsarflow.sdkx", ("pulsarflow.sdk",))
