"""pulsarflow on the local Pulsar standalone, engines deployed as functions, measured by bench.pulsar."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from bench.peers.harness import Settings


def unavailable(settings: Settings) -> str | None:
    try:
        import requests

        answer = requests.get(f"{settings.admin_url}/admin/v2/clusters", timeout=3)
    except ImportError:
        return "the project's Pulsar extra is not installed: pip install -e '.[pulsar]'"
    except requests.RequestException as exc:
        return (f"no Pulsar admin at {settings.admin_url} ({type(exc).__name__}); "
                "start a standalone with 'bash deploy/pulsar-standalone.sh start'")
    if answer.status_code != 200:
        return f"Pulsar admin at {settings.admin_url} answered {answer.status_code} to GET /admin/v2/clusters"
    return None


def versions(settings: Settings) -> dict[str, str]:
    import requests

    broker = requests.get(f"{settings.admin_url}/admin/v2/brokers/version", timeout=5)
    return {"pulsarflow": metadata.version("pulsarflow"), "pulsar-client": metadata.version("pulsar-client"),
            "pulsar": broker.text.strip().strip('"') if broker.ok else f"unknown (HTTP {broker.status_code})"}


def run(cases: list[tuple[str, int]], concurrency: int, settings: Settings) -> list[dict[str, Any]]:
    from bench import pulsar

    with pulsar.deployed(settings.admin_url, settings.service_url) as client:
        return [pulsar.run_case(client, case, workflows, concurrency) for case, workflows in cases]
