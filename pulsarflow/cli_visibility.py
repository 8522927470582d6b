"""The visibility commands of ``pulsarflow``: list, show, signal, cancel, retry, dashboard.

    pulsarflow list [--name N] [--status S] [--tag T] [--started-after T] [--ended-before T] [--limit N] [--json]
    pulsarflow show ID [--json] [--wait SECONDS]       status, result or error, and the timeline
    pulsarflow signal ID NAME [JSON-DATA]
    pulsarflow cancel ID [--reason TEXT]
    pulsarflow retry ID
    pulsarflow dashboard [--host H] [--port P] [--token T]   the web dashboard (see pulsarflow.dashboard)

Each takes ``--payload-codecs``, ``--payload-keys-file`` and ``--payload-store`` (or the
``PULSARFLOW_PAYLOAD_*`` variables) to show payloads decoded (:mod:`pulsarflow.visibility.payload_view`).

Where the data comes from: ``--store URL`` (a visibility store; see
``pulsarflow.visibility.stores``) kept up to date from the events topic when a Pulsar
connection is named (``--service-url``, ``--client-conf``, or ``PULSAR_SERVICE_URL`` /
``PULSAR_CLIENT_CONF``: the settings of :mod:`pulsarflow.pulsar.connection`, credentials
included), which also connects the client for signal, cancel and retry.
Tests and embedded programs pass a ready :class:`VisibilityService` to :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulsarflow.dashboard.server import TOKEN_ENV
from pulsarflow.errors import PulsarflowError, SearchError
from pulsarflow.events.metrics import Metrics
from pulsarflow.pulsar import connection
from pulsarflow.pulsar.connection import ConnectionConfig
from pulsarflow.visibility import payload_view, render
from pulsarflow.visibility.model import Query, parse_time
from pulsarflow.visibility.service import VisibilityService

COMMANDS = ("list", "show", "signal", "cancel", "retry", "dashboard")
DEFAULT_STORE = f"sqlite:///{Path.home() / '.cache' / 'pulsarflow' / 'visibility.db'}"


def register(sub: Any) -> None:
    """Add the visibility commands to the ``pulsarflow`` parser's subcommands."""
    listing = _command(sub, "list", "list and search workflows, newest first")
    for name in ("name", "status", "tag"):
        listing.add_argument(f"--{name}", help=f"only workflows with this {name}")
    for name in ("started-after", "started-before", "ended-after", "ended-before"):
        listing.add_argument(f"--{name}", metavar="TIME", help="ISO 8601 (UTC unless a zone is given) or ms")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--cursor", help="next_cursor of the previous page")
    show = _command(sub, "show", "one workflow: status, result or error, and its timeline")
    show.add_argument("workflow_id")
    show.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait until it has finished")
    signal = _command(sub, "signal", "send a signal to a running workflow")
    signal.add_argument("workflow_id")
    signal.add_argument("signal_name")
    signal.add_argument("data", nargs="?", default="null", help="the signal's data, as JSON (default: null)")
    cancel = _command(sub, "cancel", "cancel a running workflow")
    cancel.add_argument("workflow_id")
    cancel.add_argument("--reason", default="cancelled from the command line")
    retry = _command(sub, "retry", "retry a failed workflow from its failed tasks")
    retry.add_argument("workflow_id")
    dashboard = _command(sub, "dashboard", "serve the web dashboard")
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8765)
    dashboard.add_argument("--token", default=None, help="the token the dashboard asks for (default: "
                           f"${TOKEN_ENV}, else a new one, printed at start); visible in the process list: "
                           f"prefer {TOKEN_ENV}")


def _command(sub: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
    parser.set_defaults(visibility=name)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--store", default=DEFAULT_STORE, help="visibility store URL (memory:, sqlite:///f, redis://)")
    connection.add_arguments(parser)  # with one named: catch up from the events topic, act on workflows
    payload_view.add_arguments(parser)  # decode the payloads shown (the Functions' payload_codecs settings)
    parser.add_argument("--tenant", default="public")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--app", default="pulsarflow")
    return parser


def main(argv: list[str], service: VisibilityService | None = None) -> int:
    """Run one visibility command; ``service`` replaces the one built from --store/--service-url."""
    parser = argparse.ArgumentParser(prog="pulsarflow")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return execute(args, service)
    except PulsarflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def execute(args: argparse.Namespace, service: VisibilityService | None = None) -> int:
    if service is None:
        from pulsarflow.visibility.connect import connect_service

        service = connect_service(args.store, pulsar_connection(args), args.tenant, args.namespace, args.app)
    if payload_view.named(args, os.environ):
        service.payloads = payload_view.from_args(args, os.environ)
    actions: dict[str, Callable[[], Any]] = {
        "list": lambda: service.list(_query(args)),
        "show": lambda: _show(service, args),
        "signal": lambda: service.signal(args.workflow_id, args.signal_name, _json_data(args.data)),
        "cancel": lambda: service.cancel(args.workflow_id, args.reason),
        "retry": lambda: service.retry(args.workflow_id),
    }
    if args.visibility == "dashboard":
        from pulsarflow.dashboard.server import serve

        serve(service, args.host, args.port, token=args.token)
        return 0
    result = actions[args.visibility]()
    print(json.dumps(result, indent=2) if args.json else render.text(args.visibility, result))
    return 0


def pulsar_connection(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ConnectionConfig | None:
    """The Pulsar connection the options name; None when none is (the store alone is read)."""
    env = os.environ if env is None else env
    named = args.service_url or args.client_conf or env.get("PULSAR_SERVICE_URL") or env.get("PULSAR_CLIENT_CONF")
    return connection.from_args(args, env) if named else None


def _query(args: argparse.Namespace) -> Query:
    times = {f: parse_time(getattr(args, f)) for f in ("started_after", "started_before", "ended_after",
                                                        "ended_before") if getattr(args, f) is not None}
    return Query(name=args.name, status=args.status, tag=args.tag, limit=args.limit, cursor=args.cursor, **times)


def _show(service: VisibilityService, args: argparse.Namespace) -> Any:
    if args.wait <= 0:
        return service.show(args.workflow_id)
    return render.wait_until_closed(service, args.workflow_id, args.wait, sys.stderr)


def _json_data(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise SearchError(
            f"signal data {text!r} is not JSON; quote strings, e.g. '\"yes\"' or '{{\"n\": 1}}'") from None


def start_metrics(port: int) -> Metrics | None:
    """Metrics served on ``port`` for Prometheus (None when the port is 0: no metrics)."""
    if port == 0:
        return None
    from pulsarflow.events.exposition import MetricsServer

    metrics = Metrics()
    server = MetricsServer(metrics, port=port).start()
    print(f"metrics on {server.url}", file=sys.stderr, flush=True)
    return metrics
