"""DBOS Transact: async workflows and async steps (the fan-out is asyncio.gather over steps
started in a fixed order, as DBOS documents), in this process, with the client; the system
database is SQLite in a fresh file, or a fresh database on a PostgreSQL server."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.peers.closed_loop import run_cases
from bench.peers.harness import Settings


def unavailable(settings: Settings, variant: str = "sqlite") -> str | None:
    try:
        import dbos  # noqa: F401
    except ImportError:
        return "dbos is not installed here (bench/peers/setup.sh installs the peers)"
    if variant == "postgres":
        try:
            import psycopg

            psycopg.connect(settings.postgres_url, connect_timeout=3).close()
        except Exception as exc:  # any failure to connect means: no usable server
            return (f"no PostgreSQL at {_redacted(settings.postgres_url)} ({type(exc).__name__}: "
                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
                    "start one with 'bash bench/peers/setup.sh postgres' or pass --postgres-url")
    return None


def versions(settings: Settings, variant: str = "sqlite") -> dict[str, str]:
    found = {"dbos": metadata.version("dbos"), "sqlalchemy": metadata.version("sqlalchemy")}
    if variant == "postgres":
        import psycopg

        with psycopg.connect(settings.postgres_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        found["postgresql"] = str(row[0]) if row else "unknown"
    else:
        found["sqlite"] = sqlite3.sqlite_version
    return found


def run(cases: list[tuple[str, int]], concurrency: int, settings: Settings,
        variant: str = "sqlite") -> list[dict[str, Any]]:
    from dbos import DBOS

    from bench.peers.systems import dbos_workflows

    with _system_database(settings.postgres_url if variant == "postgres" else None) as url:
        DBOS(config={"name": "pulsarflow-bench", "system_database_url": url, "log_level": "WARNING"})
        DBOS.launch()
        try:
            return asyncio.run(run_cases(dbos_workflows.execute, f"dbos-{variant}", cases, concurrency))
        finally:
            DBOS.destroy()


@contextlib.contextmanager
def _system_database(postgres_url: str | None) -> Iterator[str]:
    """A new, empty system database, so no earlier run's workflows are recovered; dropped after."""
    if postgres_url is None:
        with tempfile.TemporaryDirectory(prefix="dbos-bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'dbos.sqlite'}"
        return
    import psycopg

    name = f"dbos_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{postgres_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{credentials.split(':')[0]}:***@{host}" if at else url
