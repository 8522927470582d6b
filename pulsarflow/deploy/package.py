"""Packaging a function: the entry point, the user's modules, and optionally pulsarflow itself.

The result is the zip layout the Python Functions runtime installs: ``<name>/src/``
(added to the import path) and ``<name>/deps/*.whl``. The runtime installs the wheels
with ``pip install -t <dir> --no-index --find-links <name>/deps``: offline, and with
``-t`` pip ignores what the functions' Python already has. So a bundled library must
bring every dependency as a wheel too (:func:`library_wheels` builds pulsarflow's and
its dependencies', for the Python and platform that runs the deploy tool, which must
be those of the functions worker's ``python3``). See docs/pulsar-setup.md.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from pulsarflow.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[2]
# What setup.py needs to build the pulsarflow wheel.
SOURCE_ITEMS = ("setup.py", "pyproject.toml", "README.md", "pulsarflow", "schemas")


def build(out_dir: Path, name: str, entry_module: str, modules: list[str], wheels: Sequence[Path] = ()) -> Path:
    """Write ``<out_dir>/<name>.zip``; ``wheels`` (from :func:`library_wheels`) go to its deps."""
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
        for wheel in wheels:
            shutil.copy2(wheel, deps / wheel.name)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    archive.write(path, path.relative_to(tmp))
    return target


def library_wheels(target: Path, extras: tuple[str, ...] = ()) -> list[Path]:
    """Build the pulsarflow wheel and fetch its dependencies' wheels into an emptied ``target``.

    ``extras`` adds optional dependencies (``redis`` for the Redis state backend).

    The build runs on a clean copy of the sources, so nothing left in a ``build/`` folder
    of the checkout can slip into the wheel.
    """
    missing = [item for item in SOURCE_ITEMS if not (ROOT / item).exists()]
    if missing:
        raise DefinitionError(f"cannot build the pulsarflow wheel: {', '.join(missing)} not found in {ROOT}; "
                              "deploy from a pulsarflow checkout or set bundle_library: false")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        for item in SOURCE_ITEMS:
            source = ROOT / item
            if source.is_dir():
                shutil.copytree(source, Path(tmp) / item, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, Path(tmp) / item)
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                               "-w", str(target), tmp + (f"[{','.join(extras)}]" if extras else "")],
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise DefinitionError(f"building the pulsarflow wheel and its dependencies failed (pip needs the "
                              f"package index to fetch them):\n{done.stderr.strip()[-2000:]}")
    return sorted(target.glob("*.whl"))


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
