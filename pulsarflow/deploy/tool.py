"""``pulsarflow deploy``: apply, delete and inspect the functions of a manifest.

apply    replay the running workflows with the new code (refused when one diverges, see
         pulsarflow.deploy.gate), check and upload the message schemas, package, create
         or update every function
apply --dry-run
         check the schemas and the user's modules, build every package and config, and
         print what apply would do; contacts no Pulsar (bundling the library may fetch
         dependency wheels from the package index, as apply does)
         (before anything else, each function's ``partitions:`` is checked against its
         topic and the partitioned topics are created or grown: see
         :func:`plan_partitions`)
delete   delete every function of the manifest
status   print each function's status
configs  write the pulsar-admin --function-config-file YAMLs only
schemas  check and upload the message schemas only

The output folder (``--out``) holds a ``.gitignore`` that ignores all of it. A function
secret that is a value (the Redis URL, for the clear-text secrets provider) is left out of
the YAMLs and of everything printed: only the REST call carries it.
"""

from __future__ import annotations

import dataclasses
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
from pulsarflow.errors import BackendError, DefinitionError, PulsarflowError, SchemaError
from pulsarflow.interpreter.registry import Registry
from pulsarflow.pulsar.connection import ConnectionConfig
from pulsarflow.topics import Topics

COMPATIBILITY = "BACKWARD_TRANSITIVE"
FIRST_INSTANCE_TIMEOUT_S = 120.0


def topic_schemas(topics: Topics, services: list[str]) -> dict[str, str]:
    """Which envelope schema each engine topic carries."""
    return topics.envelopes(services)


def upload_schemas(admin: PulsarAdmin, manifest: mf.Manifest, codec: Codec | None = None,
                   schema_validation: bool = True) -> list[str]:
    """Check every topic's schema against the registry first; upload only if all are compatible.

    What is registered is each record's wire schema (``Codec.wire_schema``: exactly the
    bytes the engines publish, writer identity included), which the engines' producers
    attach. With ``schema_validation`` the namespace then refuses producers without a
    schema (``schemaValidationEnforced``); clients of release 0.1.0 attach none, so keep it
    off while any remain (``--allow-schemaless``).
    """
    codec = codec or Codec()
    t = manifest.topics
    admin.set_compatibility(t.tenant, t.namespace, COMPATIBILITY)
    plan = topic_schemas(t, [f.service for f in manifest.functions if f.service])
    problems: list[str] = []
    for topic, record in plan.items():
        new = codec.wire_schema(record)
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
    report = [f"{topic}: version {admin.upload_schema(topic, codec.wire_schema(record)).get('version')}"
              for topic, record in plan.items()]
    admin.set_schema_validation(t.tenant, t.namespace, schema_validation)
    report.append(f"{t.tenant}/{t.namespace}: producers without a schema are "
                  + ("refused (schemaValidationEnforced)" if schema_validation else "allowed (--allow-schemaless)"))
    return report


@dataclasses.dataclass(frozen=True)
class PartitionChange:
    topic: str
    current: int  # 0 = absent or non-partitioned
    wanted: int

    def line(self) -> str:
        verb = f"create with {self.wanted} partitions" if self.current == 0 else \
            f"grow from {self.current} to {self.wanted} partitions"
        return f"{self.topic}: {verb}"


def plan_partitions(admin: PulsarAdmin, manifest: mf.Manifest) -> list[PartitionChange]:
    """What the topics need to match the manifest's ``partitions:``; refused as a whole before any change.

    Pulsar only adds partitions: fewer than a topic has, or partitions for a topic that
    exists non-partitioned, are refused here with what to do instead.
    """
    changes, problems = [], []
    for topic, wanted in mf.partitioned_topics(manifest).items():
        current = admin.partitions(topic)
        if current > wanted:
            problems.append(f"{topic} has {current} partitions, the manifest asks for {wanted}: Pulsar cannot "
                            f"remove partitions; keep partitions: {current} (or more)")
        elif current == 0 and wanted > 1 and admin.topic_exists(topic):
            problems.append(f"{topic} exists non-partitioned, the manifest asks for {wanted} partitions: Pulsar "
                            "cannot partition an existing topic; keep partitions: 1, or deploy under a new app name")
        elif wanted > 1 and current != wanted:
            changes.append(PartitionChange(topic, current, wanted))
    if problems:
        raise DefinitionError("partition counts refused, nothing changed:\n  " + "\n  ".join(problems))
    return changes


def apply_partitions(admin: PulsarAdmin, changes: Sequence[PartitionChange]) -> list[str]:
    for change in changes:
        if change.current == 0:
            admin.create_partitioned_topic(change.topic, change.wanted)
        else:
            admin.grow_partitioned_topic(change.topic, change.wanted)
    return [change.line() for change in changes]


def _named(expanded: dict[str, Any]) -> dict[str, dict[str, Any]]:
    named: dict[str, dict[str, Any]] = {}
    schemas._collect(expanded, named, "registry")
    return named


def write_configs(manifest: mf.Manifest, out: Path) -> list[Path]:
    """One pulsar-admin ``--function-config-file`` YAML per function, secrets that are values left out."""
    import yaml

    _ignored_folder(out)
    written = []
    for spec in manifest.functions:
        path = out / f"{spec.name}.yaml"
        config, _ = mf.redacted(mf.function_config(manifest, spec, f"{spec.name}.zip"))
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        written.append(path)
    return written


def _ignored_folder(out: Path) -> None:
    """Create ``out`` with a .gitignore of everything in it: generated files stay out of the repository."""
    out.mkdir(parents=True, exist_ok=True)
    ignore = out / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by pulsarflow deploy: generated packages and configs\n*\n")


def secrets_note(manifest: mf.Manifest) -> str | None:
    """What to add to pulsar-admin for the secrets the YAMLs leave out; None when none is left out."""
    stateful = next((s for s in manifest.functions if s.engine in mf.STATEFUL), None)
    if stateful is None:
        return None
    _, clear = mf.redacted(mf.function_config(manifest, stateful, "p.zip"))
    if not clear:
        return None
    return (f"note: the secret(s) {', '.join(clear)} of the workflow and tag engines are values, left out of the "
            "YAMLs; with pulsar-admin add --secrets '{\"redis_url\": \"<the URL>\"}'")


@dataclasses.dataclass(frozen=True)
class Built:
    """One function ready to deploy: its FunctionConfig (secrets included), its package, its YAML."""
    spec: mf.FunctionSpec
    config: dict[str, Any] = dataclasses.field(repr=False)
    package: Path
    yaml: Path


def build_all(manifest: mf.Manifest, out: Path, paths: Sequence[Path] | None = None) -> list[Built]:
    """Write every config and build every package (and the library wheels once, if bundled)."""
    where = list(paths) if paths is not None else ([manifest.folder] if manifest.folder else [])
    written = write_configs(manifest, out)
    extras = ("redis",) if manifest.state == "redis" else ()  # the functions' Redis client comes along
    wheels = package.library_wheels(out / "wheels", extras) if manifest.bundle_library else []
    built = []
    for spec, path in zip(manifest.functions, written):
        entry = mf.ENTRY_POINTS[spec.engine][0]
        zipped = package.build(out, spec.name, entry, manifest.modules, wheels, where)
        built.append(Built(spec, mf.function_config(manifest, spec, zipped.name), zipped, path))
    return built


def apply(admin: PulsarAdmin, manifest: mf.Manifest, out: Path, paths: Sequence[Path] | None = None,
          schema_validation: bool = True) -> list[str]:
    changes = plan_partitions(admin, manifest)  # a refusal here leaves everything as it was
    report = upload_schemas(admin, manifest, schema_validation=schema_validation)
    # Before the functions are updated: their new instances subscribe to every partition.
    report += apply_partitions(admin, changes)
    admin.keep_forever(manifest.topics.events)  # the visibility stores are rebuilt by replaying it
    report.append(f"{manifest.topics.events}: retained without limit")
    built = build_all(manifest, out, paths)
    stopped = stop_identity_less(admin, manifest)
    if stopped:
        report.append(f"stopped {', '.join(stopped)}: they run release 0.1.0, which reads no writer identities, so "
                      "every function of the app is updated before any runs again")
    for item in built:
        report.append(f"{item.spec.name}: {create_or_update(admin, item.config, item.package)}")
    for name in stopped:
        start_and_wait(admin, manifest.topics.tenant, manifest.topics.namespace, name)
    return report


def dry_run(manifest: mf.Manifest, out: Path, paths: Sequence[Path] | None = None) -> list[str]:
    """What ``apply`` would do, checked and built locally; Pulsar is not contacted."""
    report = local_schema_check()
    registry = gate.new_code(manifest.modules)
    report += service_check(manifest, registry)
    t = manifest.topics
    plan = topic_schemas(t, [f.service for f in manifest.functions if f.service])
    report += [f"would upload {record} to {topic} (if the registry finds it compatible)"
               for topic, record in plan.items()]
    report.append(f"would retain {t.events} without limit")
    report += [f"would make {topic} a partitioned topic of {n} partitions (or grow it to {n}; never fewer)"
               for topic, n in mf.partitioned_topics(manifest).items() if n > 1]
    for item in build_all(manifest, out, paths):
        size = item.package.stat().st_size // 1024
        report.append(f"would create or update {t.tenant}/{t.namespace}/{item.spec.name} ({item.spec.engine}"
                      f"{' ' + item.spec.service if item.spec.service else ''}, parallelism "
                      f"{item.spec.parallelism}{_partitions_note(item.spec)}): package {item.package} ({size} KiB), "
                      f"config {item.yaml}")
    note = secrets_note(manifest)
    report += [note] if note else []
    report.append("dry run: nothing contacted, nothing deployed; the replay check of running workflows and the "
                  "registry's compatibility check run with apply")
    return report


def _partitions_note(spec: mf.FunctionSpec) -> str:
    return f", {spec.partitions} partitions" if spec.partitions > 1 else ""


def local_schema_check(folder: Path | None = None) -> list[str]:
    """Every schema parses and reads every frozen release (what ``pulsarflow schemas check`` checks)."""
    codec = Codec(folder) if folder else Codec()
    records = sorted(n for n, s in codec.named.items() if s["type"] == "record")
    for name in records:
        codec._schema(name)  # raises SchemaError naming the schema if invalid
    history = evolution.check_history(folder or schemas.schema_dir())
    broken = {v: r["backward"] for v, r in history.items() if r["backward"]}
    if broken:
        raise SchemaError("the schemas cannot read data of earlier releases: " +
                          "; ".join(f"{v}: {', '.join(p)}" for v, p in broken.items()))
    return [f"schemas: {len(records)} records valid, reading every frozen release ({', '.join(history) or 'none'})"]


def service_check(manifest: mf.Manifest, registry: Registry) -> list[str]:
    """The user's modules load, and each task service has an executor among the functions."""
    served = {f.service for f in manifest.functions if f.engine == "executor" and f.service}
    missing = sorted(registry.services() - served)
    if missing:
        raise DefinitionError(f"tasks of service(s) {', '.join(missing)} have no executor in the manifest; add "
                              f"`- engine: executor` with `service: {missing[0]}` under functions:")
    return [f"modules: {', '.join(manifest.modules) or '(none)'} load; task services {sorted(served)} "
            "have executors"]


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
    while _running(admin, t, n, name) < 1:
        if time.monotonic() > deadline:
            raise BackendError(f"the first instance of {name} did not start within {FIRST_INSTANCE_TIMEOUT_S:.0f}s; "
                               f"see its log under logs/functions/{t}/{n}/{name}/ of the Pulsar installation")
        time.sleep(0.2)
    admin.create_or_update(config, zipped)
    return "created"


def _running(admin: PulsarAdmin, tenant: str, namespace: str, name: str) -> int:
    """Running instances of a function; 0 while the worker asked has not yet heard of a new one.

    In a cluster the leader worker stores a new function and the others learn of it from the
    metadata topic a moment later: until then their status call answers 404.
    """
    if admin.function(tenant, namespace, name) is None:
        return 0
    return int(admin.function_status(tenant, namespace, name).get("numRunning", 0))


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


def run(action: str, manifest_path: Path, admin_url: str | ConnectionConfig | PulsarAdmin, out: Path | None = None,
        options: gate.GateOptions | None = None, connection: Connection | None = None,
        paths: Sequence[Path] | None = None, dry_run_only: bool = False, schema_validation: bool = True) -> int:
    """One deploy action; ``admin_url`` is where Pulsar is: a URL, a ConnectionConfig or a ready PulsarAdmin."""
    manifest = mf.load(manifest_path)
    where = list(paths) if paths is not None else [manifest_path.resolve().parent]
    gate.import_path(where)
    out = out if out is not None else manifest_path.resolve().parent / "deploy" / "generated"
    if action in ("apply", "configs"):
        for module in manifest.modules:  # before anything else: an error naming where it was looked for
            package.find_module(module, where)
    if action == "configs":
        for path in write_configs(manifest, out):
            print(f"wrote {path}")
        note = secrets_note(manifest)
        if note:
            print(note)
        return 0
    if dry_run_only:
        if action != "apply":
            raise DefinitionError("--dry-run goes with apply only")
        print("\n".join(dry_run(manifest, out, where)))
        return 0
    admin = admin_url if isinstance(admin_url, PulsarAdmin) else PulsarAdmin(admin_url)
    t = manifest.topics
    if action == "schemas":
        lines = upload_schemas(admin, manifest, Codec(), schema_validation=schema_validation)
    elif action == "apply":
        if not replay_gate(admin, manifest, options or gate.GateOptions(),
                           connection or Connection(admin.connection)):
            return 1
        # Without --path, apply looks in the manifest's folder by itself.
        if schema_validation:  # (the shortest call: tests stand in for apply with it)
            lines = apply(admin, manifest, out) if paths is None else apply(admin, manifest, out, where)
        else:
            lines = apply(admin, manifest, out, where if paths is not None else None, schema_validation=False)
    elif action == "delete":
        lines = [f"{s.name}: {'deleted' if admin.delete_function(t.tenant, t.namespace, s.name) else 'absent'}"
                 for s in manifest.functions]
    else:
        lines = [f"{s.name}: {json.dumps(admin.function_status(t.tenant, t.namespace, s.name))}"
                 for s in manifest.functions]
    print("\n".join(lines))
    return 0
