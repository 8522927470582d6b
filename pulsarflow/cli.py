"""The ``pulsarflow`` command.

    pulsarflow schemas check [--root DIR]        validate schemas, print compatibility with history
    pulsarflow schemas freeze VERSION [--root]   copy the current schemas to history/VERSION
    pulsarflow replay check --modules M PATH...  replay saved histories with new code
    pulsarflow replay check --live               replay the running workflows of functions.yaml's app
    pulsarflow deploy apply|delete|status|...    deploy functions.yaml (apply replays running workflows first)
    pulsarflow deadletters list|show|replay      read and re-publish dead letters (see cli_deadletters)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from pulsarflow import cli_deadletters, cli_visibility, evolution, schemas
from pulsarflow.errors import PulsarflowError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pulsarflow", description="Durable workflows on Apache Pulsar")
    sub = parser.add_subparsers(dest="command", required=True)
    sch = sub.add_parser("schemas", help="validate, check and freeze the Avro schemas")
    sch_sub = sch.add_subparsers(dest="action", required=True)
    check = sch_sub.add_parser("check", help="validate schemas and check them against schemas/history")
    check.add_argument("--root", type=Path, default=None)
    check.add_argument("--json", action="store_true")
    freeze = sch_sub.add_parser("freeze", help="freeze the current schemas as a release")
    freeze.add_argument("version")
    freeze.add_argument("--root", type=Path, default=Path("schemas"))
    worker = sub.add_parser("worker", help="run task executors (or an engine, in batches) against Pulsar")
    worker.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    worker.add_argument("--modules", required=True, help="comma-separated modules with your tasks")
    worker.add_argument("--tenant", default="public")
    worker.add_argument("--namespace", default="default")
    worker.add_argument("--app", default="pulsarflow")
    worker.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port")
    worker.add_argument("--engine", choices=["executor", "workflow", "tag"], default=None,
                        help="run this engine in batches (see pulsarflow.engine_worker); default: "
                             "task executors one message at a time")
    worker.add_argument("--batch", type=int, default=200, help="messages handled together, with --engine")
    worker.add_argument("--redis-url", default=None, help="state store of the workflow and tag engines")
    worker.add_argument("--retention-ms", type=int, default=None, help="keep finished workflows this long")
    replay = sub.add_parser("replay", help="check new workflow code against recorded histories")
    replay_sub = replay.add_subparsers(dest="action", required=True)
    replay_check = replay_sub.add_parser("check", help="replay *.wfstate histories, or with --live the running "
                                         "workflows of a deployed app; exit 1 on any divergence")
    replay_check.add_argument("--modules", default=None, help="comma-separated modules with the new code "
                              "(with --live: the manifest's modules by default)")
    replay_check.add_argument("paths", nargs="*", type=Path, help="history files or folders of them")
    replay_check.add_argument("--live", action="store_true", help="replay the running workflows of the "
                              "manifest's app, read from its state store")
    replay_check.add_argument("--json", action="store_true")
    _app_options(replay_check)
    deploy = sub.add_parser("deploy", help="deploy the functions of functions.yaml (see pulsarflow.deploy)")
    deploy.add_argument("action", choices=["apply", "delete", "status", "configs", "schemas"])
    deploy.add_argument("--out", type=Path, default=Path("deploy/generated"))
    deploy.add_argument("--force", action="store_true", help="apply: deploy even when running workflows diverge")
    deploy.add_argument("--no-replay-check", action="store_true",
                        help="apply: do not replay the running workflows with the new code")
    _app_options(deploy)
    cli_visibility.register(sub)
    cli_deadletters.register(sub)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "visibility", None):
            return cli_visibility.execute(args)
        if getattr(args, "deadletters", None):
            return cli_deadletters.execute(args)
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
        if args.command == "deploy":
            return deploy_main(args)
    except PulsarflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


def _app_options(parser: argparse.ArgumentParser) -> None:
    """Where the app is described and reached: the manifest, Pulsar, Redis; how many runs to replay."""
    parser.add_argument("--manifest", type=Path, default=Path("functions.yaml"))
    parser.add_argument("--path", type=Path, action="append", default=None,
                        help="where the manifest's modules are imported from (repeatable; default: the "
                             "manifest's folder)")
    parser.add_argument("--admin-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650",
                        help="the broker, to read the events topic (state: function)")
    parser.add_argument("--redis-url", default=os.environ.get("PULSARFLOW_REDIS_URL"),
                        help="state: redis with redis_url_secret: the Redis URL (default: $PULSARFLOW_REDIS_URL)")
    parser.add_argument("--replay-sample", type=_positive, default=None, metavar="N",
                        help="replay N running workflows (the same ones each time) instead of all")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _connection(args: argparse.Namespace) -> Any:
    from pulsarflow.deploy.live import Connection

    return Connection(args.admin_url, args.service_url, args.redis_url)


def deploy_main(args: argparse.Namespace) -> int:
    from pulsarflow.deploy.gate import GateOptions
    from pulsarflow.deploy.tool import run as deploy_run

    options = GateOptions(args.replay_sample, args.force, args.no_replay_check)
    return deploy_run(args.action, args.manifest, args.admin_url, args.out, options, _connection(args), args.path)


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
    with live_source(manifest, PulsarAdmin(args.admin_url), _connection(args)) as source:
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

    from pulsarflow.topics import Topics
    from pulsarflow.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    metrics = cli_visibility.start_metrics(args.metrics_port)
    topics = Topics(args.tenant, args.namespace, args.app)
    if args.engine is None:
        run_worker(args.service_url, args.modules.split(","), topics, stop, metrics=metrics)
        return 0
    from pulsarflow.engine_worker import run_engine
    from pulsarflow.storage.redis import RedisStateStore, key_prefix

    store = None
    if args.redis_url and args.engine != "executor":
        store = RedisStateStore.from_url(args.redis_url, prefix=key_prefix(topics, args.engine),
                                         retention_ms=args.retention_ms if args.engine == "workflow" else None)
    run_engine(args.service_url, args.engine, args.modules.split(","), topics, stop, store=store,
               batch=args.batch, metrics=metrics)
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


if __name__ == "__main__":
    sys.exit(main())
