"""The ``pulsarflow`` command.

    pulsarflow init [DIR]                        scaffold a new app (see pulsarflow.scaffold)
    pulsarflow schemas check [--root DIR]        validate schemas, print compatibility with history
    pulsarflow schemas freeze VERSION [--root]   copy the current schemas to history/VERSION
    pulsarflow replay check --modules M PATH...  replay saved histories with new code
    pulsarflow replay check --live               replay the running workflows of functions.yaml's app
    pulsarflow deploy apply|delete|status|...    deploy functions.yaml (apply replays running workflows first;
                                                 apply --dry-run builds and checks, contacting nothing)
    pulsarflow deploy permissions --client R=ID  grant an app's roles their topics (see cli_access)
    pulsarflow deadletters list|show|replay      read and re-publish dead letters (see cli_deadletters)
    pulsarflow check                             test the connection settings in one line

Every command that talks to Pulsar reads one connection (``pulsarflow.pulsar.connection``): a
client.conf (``--client-conf PATH``, ``PULSAR_CLIENT_CONF``), the ``PULSAR_*`` environment
variables, then flags such as ``--service-url``, ``--admin-url``, ``--auth-token-file``.

Exit codes: 0 done; 1 the command ran and failed (a server was unreachable or refused, a
check found a problem); 2 the command was wrong (its arguments, the manifest, a module,
an input file). An error is printed as one ``error: ...`` line saying what to fix, never a
traceback (``PULSARFLOW_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

from pulsarflow import __version__, cli_access, cli_deadletters, cli_visibility, evolution, schemas
from pulsarflow.errors import BackendError, DecodeError, DefinitionError, PulsarflowError, SearchError
from pulsarflow.pulsar import connection

USAGE_ERRORS = (DefinitionError, SearchError, DecodeError)  # the command or its input is wrong: exit 2
# Help for the arguments many commands share, where a command registers one without its own.
COMMON_HELP = {
    "tenant": "the app's tenant (default: %(default)s)",
    "namespace": "the app's namespace (default: %(default)s)",
    "app": "the app's name, as in functions.yaml (default: %(default)s)",
    "service_url": "the broker (default: %(default)s)",
    "workflow_id": "the workflow's id",
    "signal_name": "the signal's name, as the workflow waits for it",
    "reason": "why, recorded with the cancellation (default: %(default)r)",
    "limit": "at most this many (default: %(default)s)",
    "host": "the address to listen on (default: %(default)s)",
    "port": "the port to listen on (default: %(default)s)",
    "action": "what to do: %(choices)s",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pulsarflow", description="Durable workflows on Apache Pulsar")
    parser.add_argument("--version", action="version", version=f"pulsarflow {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    init = sub.add_parser("init", help="scaffold a new app: functions.yaml, a workflow, a test, a README",
                          description="Write a new app into DIR (created if needed; nothing is overwritten).")
    init.add_argument("dir", nargs="?", type=Path, default=Path("."), help="the app's folder (default: here)")
    init.add_argument("--app", default=None, help="the app's name (default: the folder's name)")
    _schemas_parser(sub)
    _worker_parser(sub)
    replay = sub.add_parser("replay", help="check new workflow code against recorded histories")
    replay_sub = replay.add_subparsers(dest="action", required=True, metavar="ACTION")
    replay_check = replay_sub.add_parser("check", help="replay *.wfstate histories, or with --live the running "
                                         "workflows of a deployed app; exit 1 on any divergence")
    replay_check.add_argument("--modules", default=None, help="comma-separated modules with the new code "
                              "(with --live: the manifest's modules by default)")
    replay_check.add_argument("paths", nargs="*", type=Path, help="history files or folders of them")
    replay_check.add_argument("--live", action="store_true", help="replay the running workflows of the "
                              "manifest's app, read from its state store")
    replay_check.add_argument("--json", action="store_true", help="print one JSON object per history")
    _app_options(replay_check)
    _deploy_parser(sub)
    cli_visibility.register(sub)
    cli_deadletters.register(sub)
    cli_access.register_check(sub)
    _fill_help(parser)
    return parser


def _fill_help(parser: argparse.ArgumentParser) -> None:
    """Give the shared arguments of every subcommand their COMMON_HELP, where they have no help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _fill_help(child)
        elif action.help is None and action.dest in COMMON_HELP:
            action.help = COMMON_HELP[action.dest]


def _schemas_parser(sub: Any) -> None:
    sch = sub.add_parser("schemas", help="validate, check and freeze the Avro schemas")
    sch_sub = sch.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sch_sub.add_parser("check", help="validate schemas and check them against schemas/history")
    check.add_argument("--root", type=Path, default=None, help="the schema folder (default: the installed one)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    freeze = sch_sub.add_parser("freeze", help="freeze the current schemas as a release")
    freeze.add_argument("version", help="the release, e.g. 0.3.0")
    freeze.add_argument("--root", type=Path, default=Path("schemas"), help="the schema folder (default: schemas)")


def _worker_parser(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run task executors (or an engine, in batches) against Pulsar")
    connection.add_arguments(worker)
    worker.add_argument("--modules", required=True, help="comma-separated modules with your tasks")
    worker.add_argument("--tenant", default="public", help="the app's tenant (default: %(default)s)")
    worker.add_argument("--namespace", default="default", help="the app's namespace (default: %(default)s)")
    worker.add_argument("--app", default="pulsarflow", help="the app's name, as in functions.yaml")
    worker.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port")
    worker.add_argument("--engine", choices=["executor", "workflow", "tag"], default=None,
                        help="run this engine in batches (see pulsarflow.pulsar.engine_worker); default: "
                             "task executors one message at a time")
    worker.add_argument("--batch", type=int, default=200, help="messages handled together, with --engine")
    worker.add_argument("--redis-url", default=None, help="state store of the workflow and tag engines")
    worker.add_argument("--retention-ms", type=int, default=None, help="keep finished workflows this long")
    worker.add_argument("--max-concurrent", action="append", default=[], metavar="SERVICE=N",
                        help="at most N attempts of SERVICE running across all its workers and Functions "
                             "(repeatable; leases shared in --redis-url; docs/flow-control.md)")
    worker.add_argument("--max-starts-per-second", action="append", default=[], metavar="SERVICE=N",
                        help="at most N attempts of SERVICE started per second, across all its workers "
                             "(repeatable; needs --redis-url)")


def _deploy_parser(sub: Any) -> None:
    deploy = sub.add_parser("deploy", help="deploy the functions of functions.yaml as Pulsar Functions",
                            description="apply: replay running workflows with the new code, upload the schemas, "
                            "create or update every function; delete: remove them; status: their status; "
                            "configs: write the pulsar-admin YAMLs only; schemas: check and upload the "
                            "schemas only; permissions: grant the roles given (--client, --executor, --engine, "
                            "--reader) their topics of the app (docs/security.md)")
    deploy.add_argument("action", choices=["apply", "delete", "status", "configs", "schemas", "permissions"],
                        help="what to do (see above)")
    deploy.add_argument("--out", type=Path, default=None,
                        help="where packages and configs are written (default: deploy/generated beside the "
                             "manifest; git-ignored)")
    deploy.add_argument("--dry-run", action="store_true",
                        help="apply: check the schemas and modules, build every package and config, print what "
                             "would be deployed; contacts no Pulsar")
    deploy.add_argument("--force", action="store_true", help="apply: deploy even when running workflows diverge")
    deploy.add_argument("--no-replay-check", action="store_true",
                        help="apply: do not replay the running workflows with the new code")
    deploy.add_argument("--allow-schemaless", action="store_true",
                        help="apply/schemas: leave producers without a schema allowed on the namespace (clients "
                             "of release 0.1.0 attach none); by default schemaValidationEnforced is turned on")
    cli_access.role_options(deploy)
    _app_options(deploy)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a usage error exits 2 with argparse's message
    try:
        return _dispatch(args)
    except BackendError as exc:
        return _fail(str(exc), 1)
    except USAGE_ERRORS as exc:
        return _fail(str(exc), 2)
    except PulsarflowError as exc:
        return _fail(str(exc), 1)
    except ImportError as exc:  # our own messages name the extra; a bare one ("No module named x") does not
        hint = "" if "pip install" in str(exc) else ("; the command needs an optional dependency: pip install "
                                                     "'pulsarflow[pulsar]' (or [redis])")
        return _fail(f"{exc}{hint}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        return _fail(f"unexpected {type(exc).__name__}: {exc} (PULSARFLOW_DEBUG=1 shows where)", 1)


def _fail(message: str, code: int) -> int:
    if os.environ.get("PULSARFLOW_DEBUG") == "1":
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    return code


def _dispatch(args: argparse.Namespace) -> int:
    if getattr(args, "visibility", None):
        return cli_visibility.execute(args)
    if getattr(args, "deadletters", None):
        return cli_deadletters.execute(args)
    if args.command == "check":
        return cli_access.check_main(args)
    if args.command == "init":
        return init_main(args.dir, args.app)
    if args.command == "schemas" and args.action == "check":
        return schemas_check(args.root, args.json)
    if args.command == "schemas" and args.action == "freeze":
        return schemas_freeze(args.root, args.version)
    if args.command == "worker":
        return worker_main(args)
    if args.command == "replay" and args.live:
        return replay_live(args)
    if args.command == "replay":
        return replay_main(args.modules, args.paths, args.json)
    return deploy_main(args)


def init_main(folder: Path, app: str | None) -> int:
    from pulsarflow import scaffold

    written = scaffold.init(folder, app)
    for path in written:
        print(f"wrote {path}")
    _, package = scaffold.names_for(folder, app)
    where = "" if folder.resolve() == Path.cwd() else f"cd {folder} && "
    print(f"next: {where}python -m {package}.run && python -m pytest -q && pulsarflow deploy apply --dry-run")
    return 0


def _app_options(parser: argparse.ArgumentParser) -> None:
    """Where the app is described and reached: the manifest, Pulsar, Redis; how many runs to replay."""
    parser.add_argument("--manifest", type=Path, default=Path("functions.yaml"),
                        help="the app's manifest (default: functions.yaml here)")
    parser.add_argument("--path", type=Path, action="append", default=None,
                        help="where the manifest's modules are imported from (repeatable; default: the "
                             "manifest's folder)")
    connection.add_arguments(parser)  # the admin REST API, and the broker to read the events topic
    parser.add_argument("--redis-url", default=os.environ.get("PULSARFLOW_REDIS_URL"),
                        help="state: redis with redis_url_secret: the Redis URL (default: $PULSARFLOW_REDIS_URL)")
    parser.add_argument("--replay-sample", type=_positive, default=None, metavar="N",
                        help="replay N running workflows (the same ones each time) instead of all")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _connection(args: argparse.Namespace, config: connection.ConnectionConfig) -> Any:
    from pulsarflow.deploy.live import Connection

    return Connection(config, args.redis_url)


def deploy_main(args: argparse.Namespace) -> int:
    from pulsarflow.deploy.gate import GateOptions
    from pulsarflow.deploy.tool import run as deploy_run

    if args.action == "permissions":
        return cli_access.permissions_main(args)
    offline = args.action == "configs" or args.dry_run  # needs no connection settings: none are read
    config = connection.ConnectionConfig() if offline else connection.from_args(args)
    options = GateOptions(args.replay_sample, args.force, args.no_replay_check)
    return deploy_run(args.action, args.manifest, config, args.out, options, _connection(args, config), args.path,
                      dry_run_only=args.dry_run, schema_validation=not args.allow_schemaless)


def replay_live(args: argparse.Namespace) -> int:
    """The running workflows of the manifest's app replayed with the new code, nothing deployed."""
    from pulsarflow.deploy import gate
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy.admin import PulsarAdmin
    from pulsarflow.deploy.live import live_source

    if args.paths:
        print("error: --live reads the running workflows, not history files; drop the paths", file=sys.stderr)
        return 2
    manifest = mf.load(args.manifest)
    gate.import_path(args.path if args.path is not None else [args.manifest.parent])
    registry = gate.new_code(args.modules.split(",") if args.modules else manifest.modules)
    config = connection.from_args(args)
    with live_source(manifest, PulsarAdmin(config), _connection(args, config)) as source:
        report = gate.check_source(source, registry, args.replay_sample)
    print("\n".join(report.json_lines() if args.json else report.lines()))
    return 0 if report.ok else 1


def replay_main(modules: str | None, paths: list[Path], as_json: bool) -> int:
    from pulsarflow import replaycheck
    from pulsarflow.usercode import load_registry

    if not modules or not paths:
        print("error: replay check needs --modules and history files (or --live, for the running workflows)",
              file=sys.stderr)
        return 2
    histories = replaycheck.load_histories(paths)
    if not histories:
        print(f"error: no {replaycheck.SUFFIX} history found in {[str(p) for p in paths]}", file=sys.stderr)
        return 2
    results = replaycheck.check_all(histories, load_registry(modules.split(",")))
    for result in results:
        print(json.dumps(result.__dict__) if as_json else result.describe())
    diverging = sum(not r.ok for r in results)
    if not as_json:
        print(f"{len(results)} histories, {diverging} diverging")
    return 1 if diverging else 0


def schemas_check(root: Path | None, as_json: bool) -> int:
    from pulsarflow.codec import Codec

    folder = root or schemas.schema_dir()
    codec = Codec(folder)
    records = sorted(n for n, s in codec.named.items() if s["type"] == "record")
    for name in records:
        codec._schema(name)  # parses: raises SchemaError naming the schema if invalid
    report = evolution.check_history(folder)
    if as_json:
        print(json.dumps({"schemas": len(records), "history": report}, indent=2))
    else:
        print(f"{len(records)} record schemas in {folder} are valid")
        for version, result in report.items():
            verdict = "compatible" if not result["backward"] else "INCOMPATIBLE"
            print(f"  reads data written by {version}: {verdict}")
            for problem in result["backward"]:
                print(f"    - {problem}")
            if result["forward"]:
                print(f"    ({len(result['forward'])} change(s) that {version} readers cannot read: fine "
                      "under BACKWARD_TRANSITIVE, deploy readers first)")
    return 1 if any(r["backward"] for r in report.values()) else 0


def worker_main(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from pulsarflow.pulsar.worker import run_worker
    from pulsarflow.topics import Topics

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    config = connection.from_args(args)
    metrics = cli_visibility.start_metrics(args.metrics_port)
    topics = Topics(args.tenant, args.namespace, args.app)
    from pulsarflow.runtime.flow import limits_from_flags

    flow = limits_from_flags(args.max_concurrent, args.max_starts_per_second)
    if args.engine is None and not flow:
        run_worker(config, args.modules.split(","), topics, stop, metrics=metrics)
        return 0
    from pulsarflow.pulsar.engine_worker import run_engine
    from pulsarflow.storage.redis import RedisStateStore, key_prefix

    engine = args.engine or "executor"  # limits: the executors of run_worker, on shared leases
    store = None
    if args.redis_url:
        store = RedisStateStore.from_url(args.redis_url, prefix=key_prefix(topics, engine),
                                         retention_ms=args.retention_ms if engine == "workflow" else None)
    run_engine(config, engine, args.modules.split(","), topics, stop, store=store,
               batch=args.batch if args.engine else 1, metrics=metrics, flow=flow)
    return 0


def schemas_freeze(root: Path, version: str) -> int:
    target = root / "history" / version
    if target.exists():
        print(f"error: {target} already exists; frozen schemas never change", file=sys.stderr)
        return 2
    target.mkdir(parents=True)
    for path in sorted(root.glob("*.avsc")):
        shutil.copy2(path, target / path.name)
    print(f"froze {len(list(target.glob('*.avsc')))} schemas into {target}")
    return 0


def run() -> None:
    """The ``pulsarflow`` command: ``main``, then exit without the interpreter's teardown.

    The Pulsar client's native threads can abort the process while Python finalizes it
    ("terminate called without an active exception"), turning a command that succeeded
    into exit code -6; everything is flushed and closed by then, so the command ends here.
    """
    import logging
    import os

    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
