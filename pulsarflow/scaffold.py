"""``pulsarflow init [DIR]``: a new app in a folder, ready to run, test and deploy.

It writes ``functions.yaml`` (the app's engines and one executor), ``<package>/flows.py``
(two tasks and one workflow), ``<package>/run.py`` (start it embedded or on Pulsar),
``tests/test_flows.py`` (on the test kit, :mod:`pulsarflow.testing`), a README with the
commands, and a ``.gitignore``. The templates are ``pulsarflow/templates/app/*.tmpl``.
Nothing is overwritten: a file that exists already stops it before anything is written.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from pulsarflow.errors import DefinitionError

TEMPLATES = Path(__file__).resolve().parent / "templates" / "app"
RENAMED = {"gitignore": ".gitignore"}


def names_for(folder: Path, app: str | None = None) -> tuple[str, str]:
    """The app's name (topics, function names) and its Python package, from the folder's name."""
    base = app or folder.resolve().name
    app_name = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")
    if not app_name or not app_name[0].isalpha():
        raise DefinitionError(f"cannot make an app name of {base!r}: give one with --app NAME (letters, digits, "
                              "dashes; starting with a letter)")
    package = app_name.replace("-", "_")
    if keyword.iskeyword(package) or package in ("pulsarflow", "tests", "test"):
        package = f"{package}_app"
    return app_name, package


def plan(folder: Path, app: str | None = None) -> dict[Path, str]:
    """Every file to write (path -> text), without writing."""
    app_name, package = names_for(folder, app)
    files = {}
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATES).with_suffix("")
        parts = [package if p == "package" else RENAMED.get(p, p) for p in relative.parts]
        text = template.read_text(encoding="utf-8").replace("{{app}}", app_name).replace("{{package}}", package)
        files[folder.joinpath(*parts)] = text
    return files


def init(folder: Path, app: str | None = None) -> list[Path]:
    """Write a new app into ``folder`` (created if needed); returns the files written."""
    files = plan(folder, app)
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise DefinitionError(f"{', '.join(existing)} exist(s) already; nothing written: init an empty folder "
                              "or a new one (pulsarflow init DIR)")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
