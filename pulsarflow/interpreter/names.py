"""Names that workflow code and clients agree on (signals, queries, updates, patch markers), checked alike.

A name is recorded in the workflow's history and in messages; one that is not a string
could not be written there at all (the engine would fail on every message of the run), so
both sides refuse it where it is passed, saying what is wrong.
"""

from __future__ import annotations

from pulsarflow.errors import DefinitionError

MAX_NAME_CHARS = 1_000


def check_name(what: str, name: object) -> str:
    """``name`` if it can name a signal, query, update or patch; DefinitionError saying why not."""
    if not isinstance(name, str):
        raise DefinitionError(f"{what} must be a string, got {type(name).__name__} {name!r:.60}")
    if not name:
        raise DefinitionError(f"{what} must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise DefinitionError(f"{what} has {len(name):,} characters; at most {MAX_NAME_CHARS:,} are allowed "
                              f"({name[:40]!r}...)")
    try:
        name.encode()
    except UnicodeEncodeError as exc:
        raise DefinitionError(f"{what} {name[:40]!r} is not valid unicode text: {exc.reason}") from None
    return name
