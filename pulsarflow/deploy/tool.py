"""``pulsarflow deploy``: apply, delete and inspect the functions of a manifest.

apply    replay the running workflows with the new code (refused when one diverges, see
         pulsarflow.deploy.gate), check and upload the message schemas, package, create
         or update every function
delete   delete every function of the manifest
status   print each function's status
configs  write the pulsar-admin --function-config-file YAMLs only
schemas  check and upload the message schemas only
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pulsarflow import evolution, schemas
from pulsarflow.codec import Codec
from pulsarflow.deploy import gate, package
from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy.admin import PulsarAdmin
from pulsarflow.deploy.live import Connection, LiveSource, live_source
from pulsarflow.errors import BackendError, PulsarflowError, SchemaError
from pulsarflow.sdk.registry import Registry
from pulsarflow.topics import Topics

COMPATIBILITY = "BACKWARD_TRANSITIVE"
FIRST_INSTANCE_TIMEOUT_S = 120.0


def topic_schemas(topics: Topics, services: list[str]) -> dict[str, str]:
    """Which envelope schema each engine topic carries."""
    out = {topics.workflow_engine: "WorkflowEngineMessage", topics.tag_engine: "TagEngineMessage",
           topics.dead_letters: "DeadLetter", topics.events: "WorkflowEvent"}
    out.update({topics.executor(s): "TaskExecutorMessage" for s in services})
    return out


def upload_schemas(admin: PulsarAdmin, manifest: mf.Manifest, codec: Codec | None = None) -> list[str]:
    """Check every topic's schema against the registry first; upload only if all are compatible."""
    codec = codec or Codec()
    t = manifest.topics
    admin.set_compatibility(t.tenant, t.namespace, COMPATIBILITY)
    plan = topic_schemas(t, [f.service for f in manifest.functions if f.service])
    problems: list[str] = []
    for topic, record in plan.items():
        new = codec.schema_json(record)
        registered = admin.schema(topic)
        if registered is not None:
            old = json.loads(registered["data"]) if isinstance(registered.get("data"), str) else registered["data"]
            found = evolution.problems(_named(old), _named(new), [f"pulsarflow.{record}"])
            if found or not admin.is_compatible(topic, new):
                problems += [f"{topic}: {p}" for p in found] or [f"{topic}: {record} refused by the registry"]
    if problems:
        raise SchemaError("incompatible schema change, nothing uploaded (namespace strategy "
                          f"{COMPATIBILITY}):\n  " + "\n  ".join(problems) +
                          "\nAdd new fields with defaults; never remove or retype a field without a default.")
    return [f"{topic}: version {admin.upload_schema(topic, codec.schema_json(record)).get('version')}"
            for topic, record in plan.items()]


def _named(expanded: dict[str, Any]) -> dict[str, dict[str, Any]]:
    named: dict[str, dict[str, Any]] = {}
    schemas._collect(expanded, named, "registry")
    return named


def write_configs(manifest: mf.Manifest, out: Path) -> list[Path]:
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in manifest.functions:
        path = out / f"{spec.name}.yaml"
        path.write_text(yaml.safe_dump(mf.function_config(manifest, spec, f"{spec.name}.zip"), sort_keys=False))
        written.append(path)
    return written


def apply(admin: PulsarAdmin, manifest: mf.Manifest, out: Path) -> list[str]:
    report = upload_schemas(admin, manifest)
    admin.keep_forever(manifest.topics.events)  # the visibility stores are rebuilt by replaying it
    report.append(f"{manifest.topics.events}: retained without limit")
    write_configs(manifest, out)
    extras = ("redis",) if manifest.state == "redis" else ()  # the functions' Redis client comes along
    wheels = package.library_wheels(out / "wheels", extras) if manifest.bundle_library else []
    stopped = stop_identity_less(admin, manifest)
    if stopped:
        report.append(f"stopped {', '.join(stopped)}: they run release 0.1.0, which reads no writer identities, so "
                      "every function of the app is updated before any runs again")
    for spec in manifest.functions:
        entry = mf.ENTRY_POINTS[spec.engine][0]
        zipped = package.build(out, spec.name, entry, manifest.modules, wheels)
        config = mf.function_config(manifest, spec, zipped.name)
        report.append(f"{spec.name}: {create_or_update(admin, config, zipped)}")
    for name in stopped:
        start_and_wait(admin, manifest.topics.tenant, manifest.topics.namespace, name)
    return report


def start_and_wait(admin: PulsarAdmin, tenant: str, namespace: str, name: str) -> None:
    """Start a stopped function and wait until an instance runs; a start the worker lost is asked again."""
    deadline = time.monotonic() + 3 * FIRST_INSTANCE_TIMEOUT_S
    while True:
        admin.start_function(tenant, namespace, name)
        asked = time.monotonic()
        while time.monotonic() - asked < 20:
            if admin.function_status(tenant, namespace, name).get("numRunning", 0) >= 1:
                return
            time.sleep(1.0)
        if time.monotonic() > deadline:
            raise BackendError(f"{name} did not start again after its update; start it with "
                               f"`pulsar-admin functions start --tenant {tenant} --namespace {namespace} "
                               f"--name {name}` and look at its log")


def stop_identity_less(admin: PulsarAdmin, manifest: mf.Manifest) -> list[str]:
    """Stop the app's functions if any runs release 0.1.0; returns the names stopped.

    Release 0.1.0 cannot read messages that carry a writer identity, so a function still on
    it would dead-letter what an updated one sends. Stopping them all first makes the switch
    at once: messages wait in the topics meanwhile. Later releases read each other's
    messages or keep them for the upgraded instances, so they are updated one by one.
    """
    t, n = manifest.topics.tenant, manifest.topics.namespace
    deployed = {spec.name: admin.function(t, n, spec.name) for spec in manifest.functions}
    if not any(c is not None and "release" not in (c.get("userConfig") or {}) for c in deployed.values()):
        return []
    names = [name for name, config in deployed.items() if config is not None]
    for name in names:
        admin.stop_function(t, n, name)
    return names


def create_or_update(admin: PulsarAdmin, config: dict[str, Any], zipped: Path) -> str:
    """Create or update one function; a new one with parallelism > 1 starts with one instance.

    Every instance creates the function's state table at start-up if it is missing; when
    several start together, the table service fails all but one and those exit, to be
    restarted seconds later (see docs/pulsar-setup.md). So the first instance creates the
    table alone, then the function is updated to its parallelism.
    """
    t, n, name = config["tenant"], config["namespace"], config["name"]
    if config["parallelism"] <= 1 or admin.function(t, n, name) is not None:
        return admin.create_or_update(config, zipped)
    admin.create_or_update({**config, "parallelism": 1}, zipped)
    deadline = time.monotonic() + FIRST_INSTANCE_TIMEOUT_S
    while admin.function_status(t, n, name).get("numRunning", 0) < 1:
        if time.monotonic() > deadline:
            raise BackendError(f"the first instance of {name} did not start within {FIRST_INSTANCE_TIMEOUT_S:.0f}s; "
                               f"see its log under logs/functions/{t}/{n}/{name}/ of the Pulsar installation")
        time.sleep(0.2)
    admin.create_or_update(config, zipped)
    return "created"


SourceFor = Callable[[mf.Manifest, Any, Connection], AbstractContextManager[LiveSource]]


def replay_gate(admin: Any, manifest: mf.Manifest, options: gate.GateOptions, connection: Connection,
                registry: Registry | None = None, source_for: SourceFor | None = None) -> bool:
    """Replay the running workflows with the new code and print the report; whether the deploy may go on."""
    if options.skip:
        print("replay check skipped (--no-replay-check): running workflows were not replayed")
        return True
    try:
        code = registry if registry is not None else gate.new_code(manifest.modules)
        with (source_for or live_source)(manifest, admin, connection) as source:
            report = gate.check_source(source, code, options.sample)
    except PulsarflowError as exc:
        if not options.force:
            raise
        print(f"replay check could not run: {exc}\ndeploying anyway (--force)")
        return True
    print("\n".join(report.lines()))
    if report.ok or options.force:
        print("deploying anyway (--force)" if not report.ok else "no running workflow diverges: deploying")
        return True
    print(f"error: nothing deployed: {len(report.diverging)} running workflow(s) diverge and "
          f"{len(report.runs.unreadable)} could not be read; {gate.ADVICE}", file=sys.stderr)
    return False


def run(action: str, manifest_path: Path, admin_url: str, out: Path, options: gate.GateOptions | None = None,
        connection: Connection | None = None, paths: Sequence[Path] | None = None) -> int:
    manifest = mf.load(manifest_path)
    gate.import_path(paths if paths is not None else [manifest_path.parent])
    if action == "configs":
        for path in write_configs(manifest, out):
            print(f"wrote {path}")
        return 0
    admin = PulsarAdmin(admin_url)
    t = manifest.topics
    if action == "schemas":
        lines = upload_schemas(admin, manifest, Codec())
    elif action == "apply":
        if not replay_gate(admin, manifest, options or gate.GateOptions(),
                           connection or Connection(admin_url=admin_url)):
            return 1
        lines = apply(admin, manifest, out)
    elif action == "delete":
        lines = [f"{s.name}: {'deleted' if admin.delete_function(t.tenant, t.namespace, s.name) else 'absent'}"
                 for s in manifest.functions]
    else:
        lines = [f"{s.name}: {json.dumps(admin.function_status(t.tenant, t.namespace, s.name))}"
                 for s in manifest.functions]
    print("\n".join(lines))
    return 0
