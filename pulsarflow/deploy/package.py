"""Packaging a function: the entry point, the user's modules, and optionally pulsarflow itself.

The result is the zip layout the Python Functions runtime installs: ``<name>/src/``
(added to the import path) and ``<name>/deps/*.whl``. The runtime installs the wheels
with ``pip install -t <dir> --no-index --find-links <name>/deps``: offline, and with
``-t`` pip ignores what the functions' Python already has. So a bundled library must
bring every dependency as a wheel too (:func:`library_wheels` builds pulsarflow's and
its dependencies', for the Python and platform that runs the deploy tool, which must
be those of the functions worker's ``python3``). See docs/pulsar-setup.md.

Everything comes from the installed pulsarflow, so the deploy tool works from any
folder: the entry points of the top-level ``functions/`` folder ship in the wheel as
``pulsarflow/_functions``, and the pulsarflow wheel a package bundles is built from the
checkout when pulsarflow runs from one, or else packed again from the installed files.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pulsarflow
from pulsarflow.errors import DefinitionError

LIBRARY = Path(pulsarflow.__file__).resolve().parent
ROOT = LIBRARY.parent
# What setup.py needs to build the pulsarflow wheel.
SOURCE_ITEMS = ("setup.py", "pyproject.toml", "README.md", "pulsarflow", "schemas", "functions")


def build(out_dir: Path, name: str, entry_module: str, modules: list[str], wheels: Sequence[Path] = (),
          paths: Sequence[Path] = ()) -> Path:
    """Write ``<out_dir>/<name>.zip``; ``wheels`` (from :func:`library_wheels`) go to its deps.

    The user's ``modules`` are looked for in ``paths`` first (the manifest's folder, or
    ``--path``), then among the installed packages.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / name / "src"
        deps = Path(tmp) / name / "deps"
        src.mkdir(parents=True)
        deps.mkdir()
        shutil.copy2(entry_file(entry_module), src / f"{entry_module}.py")
        for module in modules:
            _copy_module(module, src, paths)
        for wheel in wheels:
            shutil.copy2(wheel, deps / wheel.name)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    archive.write(path, path.relative_to(tmp))
    return target


def library_wheels(target: Path, extras: tuple[str, ...] = ()) -> list[Path]:
    """The pulsarflow wheel and its dependencies' wheels, in an emptied ``target``.

    ``extras`` adds optional dependencies (``redis`` for the Redis state backend). The
    dependencies come from the package index (or ``PIP_FIND_LINKS``).

    From a checkout the wheel is built on a clean copy of the sources, so nothing left in
    a ``build/`` folder can slip into it; from an installed wheel it is packed again from
    the installed files (:func:`repack_installed`).
    """
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        if all((ROOT / item).exists() for item in SOURCE_ITEMS):
            for item in SOURCE_ITEMS:
                source = ROOT / item
                if source.is_dir():
                    shutil.copytree(source, Path(tmp) / item, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(source, Path(tmp) / item)
            spec = tmp
        else:
            spec = str(repack_installed(Path(tmp)))
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                               "-w", str(target), spec + (f"[{','.join(extras)}]" if extras else "")],
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise DefinitionError(f"building the pulsarflow wheel and its dependencies failed (pip needs the "
                              f"package index to fetch them):\n{done.stderr.strip()[-2000:]}")
    return sorted(target.glob("*.whl"))


def repack_installed(folder: Path) -> Path:
    """Pack the installed pulsarflow (a pure-Python wheel install) into a wheel in ``folder``."""
    try:
        dist = importlib.metadata.distribution("pulsarflow")
    except importlib.metadata.PackageNotFoundError as exc:
        raise DefinitionError(f"pulsarflow at {LIBRARY} is neither a checkout nor an installed distribution; "
                              "install it with pip, or set bundle_library: false") from exc
    info = f"pulsarflow-{dist.version}.dist-info"
    base = Path(str(dist.locate_file("")))
    skip = {f"{info}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    files = sorted(str(f) for f in dist.files or ()
                   if str(f).split("/")[0] in ("pulsarflow", info) and str(f) not in skip
                   and "__pycache__" not in str(f))
    if not any(f.startswith("pulsarflow/") for f in files):
        raise DefinitionError(f"the installed pulsarflow {dist.version} lists no files of its own (an editable "
                              "install?); deploy from its checkout, or set bundle_library: false")
    wheel = folder / f"pulsarflow-{dist.version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in files:
            data = (base / name).read_bytes()
            archive.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        archive.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return wheel


def entry_file(entry_module: str) -> Path:
    """The Pulsar Function entry point ``entry_module``: shipped in the wheel, or the checkout's."""
    for folder in (LIBRARY / "_functions", ROOT / "functions"):
        if (folder / f"{entry_module}.py").is_file():
            return folder / f"{entry_module}.py"
    raise DefinitionError(f"entry point {entry_module}.py not found in {LIBRARY / '_functions'}; "
                          "reinstall pulsarflow (its wheel carries them)")


def find_module(module: str, paths: Sequence[Path] = ()) -> Path:
    """The file or package folder holding ``module``'s top level: in ``paths`` first, then installed."""
    top = module.split(".")[0]
    for folder in paths:
        for candidate in (Path(folder) / top, Path(folder) / f"{top}.py"):
            if candidate.is_dir() or candidate.is_file():
                return candidate.resolve()
    spec = importlib.util.find_spec(top) if top.isidentifier() else None
    if spec is not None and spec.origin not in (None, "built-in", "frozen"):
        origin = Path(str(spec.origin))
        return origin.parent if origin.name == "__init__.py" else origin
    if spec is not None and spec.submodule_search_locations:  # a namespace package
        return Path(next(iter(spec.submodule_search_locations)))
    where = ", ".join(str(Path(p).resolve()) for p in paths) or "(no folder given)"
    raise DefinitionError(f"user module {module!r} not found: looked for {top}/ and {top}.py in {where} and "
                          "among the installed packages; fix 'modules:' in the manifest, or pass --path DIR")


def _copy_module(module: str, src: Path, paths: Sequence[Path]) -> None:
    origin = find_module(module, paths)
    dest = src / origin.name
    if dest.exists():
        return
    if origin.is_dir():
        shutil.copytree(origin, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        shutil.copy2(origin, dest)
