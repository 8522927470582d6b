"""Packaging a function: the entry point, the user's modules, and pulsarflow itself.

The result is the zip layout the Python Functions runtime installs: ``<name>/src/``
(added to the import path) and ``<name>/deps/*.whl`` (installed with pip, offline).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from pulsarflow.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[2]


def build(out_dir: Path, name: str, entry_module: str, modules: list[str], with_wheel: bool = True) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / name / "src"
        deps = Path(tmp) / name / "deps"
        src.mkdir(parents=True)
        deps.mkdir()
        shutil.copy2(_entry_file(entry_module), src / f"{entry_module}.py")
        for module in modules:
            _copy_module(module, src)
        if with_wheel:
            _wheel(deps)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    archive.write(path, path.relative_to(tmp))
    return target


def _entry_file(entry_module: str) -> Path:
    path = ROOT / "functions" / f"{entry_module}.py"
    if not path.is_file():
        raise DefinitionError(f"entry point {path} not found; run the deploy tool from a pulsarflow checkout")
    return path


def _copy_module(module: str, src: Path) -> None:
    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None or spec.origin is None:
        raise DefinitionError(f"user module {module!r} is not importable from here; check 'modules:' in the manifest")
    origin = Path(spec.origin)
    if origin.name == "__init__.py":
        dest = src / origin.parent.name
        if not dest.exists():
            shutil.copytree(origin.parent, dest, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(origin, src / origin.name)


def _wheel(deps: Path) -> None:
    if not (ROOT / "setup.py").is_file():
        raise DefinitionError(f"no setup.py in {ROOT}: cannot build the pulsarflow wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(deps), str(ROOT)],
                   check=True)
