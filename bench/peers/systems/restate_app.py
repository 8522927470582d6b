"""Restate: the server binary from npm (``@restatedev/restate-server``) with its shipped configuration
and a fresh data folder (bench.peers.systems.restate_server); the service from Restate's Python SDK
served by Hypercorn with its defaults, in this process, registered with the admin API; the client
in this process, calling the service's handlers over the server's HTTP ingress."""

from __future__ import annotations

import asyncio
import time
from importlib import metadata
from typing import Any

from bench.peers.closed_loop import run_cases
from bench.peers.harness import Settings
from bench.peers.systems import restate_server

CALL_TIMEOUT_S = 120.0


def unavailable(settings: Settings) -> str | None:
    try:
        import httpx  # noqa: F401
        import hypercorn  # noqa: F401
        import restate  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed here (bench/peers/setup.sh venv installs the peers)"
    if restate_server.binary() is None:
        return "no 'restate-server' binary: bash bench/peers/setup.sh restate (npm @restatedev/restate-server)"
    return None


def versions(settings: Settings) -> dict[str, str]:
    return {"restate-sdk": metadata.version("restate-sdk"), "hypercorn": metadata.version("hypercorn"),
            "restate-server": restate_server.version()}


def run(cases: list[tuple[str, int]], concurrency: int, settings: Settings) -> list[dict[str, Any]]:
    with restate_server.running() as server:
        return asyncio.run(_run(server, cases, concurrency))


async def _run(server: restate_server.Server, cases: list[tuple[str, int]], concurrency: int) -> list[dict[str, Any]]:
    import httpx
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from bench.peers.systems import restate_services

    port = restate_server.free_port()
    config = Config()
    config.bind = [f"{restate_server.HOST}:{port}"]
    stop = asyncio.Event()
    endpoint = asyncio.create_task(serve(restate_services.app(), config, shutdown_trigger=stop.wait))
    try:
        await _wait_listening(port)
        await asyncio.to_thread(restate_server.register, server, f"http://{restate_server.HOST}:{port}")
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=server.ingress_url, limits=limits, timeout=CALL_TIMEOUT_S) as client:

            async def execute(kind: str, tasks: int) -> Any:
                answer = await client.post(f"/{restate_services.SERVICE}/{kind}", json=tasks)
                answer.raise_for_status()
                return answer.json()

            return await run_cases(execute, "restate", cases, concurrency)
    finally:
        stop.set()
        await asyncio.wait_for(endpoint, timeout=30)


async def _wait_listening(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection(restate_server.HOST, port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Restate service endpoint did not listen on port {port} "
                                   f"within {timeout_s:.0f} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
