"""Reading functions.yaml into Pulsar FunctionConfig dictionaries.

The produced dictionaries are exactly what ``pulsar-admin functions create
--function-config-file`` takes (and what the admin REST API takes as ``functionConfig``).

The Redis URL of ``state: redis`` may hold a password, so it reaches the functions only
as the function secret ``redis_url``, never in ``userConfig``:

- ``redis_url_secret: REF`` is what the functions worker's secrets provider resolves
  (a name, or a mapping such as ``{path: ..., key: ...}`` for the Kubernetes runtime).
  The process and thread runtimes (a standalone's) use the clear-text provider, whose
  reference is the value itself: there ``REF`` is the URL.
- ``redis_url: URL`` is sent as that clear-text secret.

Either may be written ``${VAR}``: the value is read from the environment when the
manifest is loaded, so it need not be written in the file. A secret that is a URL is
left out of every file the deploy tool writes and every line it prints (:func:`redacted`):
only the admin REST call carries it.

``partitions: N`` on a function makes its input topic a partitioned topic of N partitions
(default 1: a non-partitioned topic, as before). Producers route each message by the hash
of its key, so one workflow id (one tag bucket) stays on one partition, and each partition
is consumed Key_Shared. A function needs at least as many instances as partitions
(``parallelism >= partitions``); the count can only grow (see docs/scaling.md).

An executor may limit its service (docs/flow-control.md): ``max_concurrent``,
``max_starts_per_second``, ``flow_store`` (function | redis), ``flow_lease_ms``,
``flow_retry_ms``, on the entry or in its ``config``; checked when the manifest is read.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulsarflow import __version__
from pulsarflow.errors import DefinitionError
from pulsarflow.runtime.flow import limit_from_config, store_from_config
from pulsarflow.storage.config import parse_backend, parse_retention
from pulsarflow.topics import Topics

ENTRY_POINTS = {
    "workflow": ("workflow_engine", "WorkflowEngineFunction"),
    "executor": ("task_executor", "TaskExecutorFunction"),
    "tag": ("tag_engine", "TagEngineFunction"),
}
STATEFUL = ("workflow", "tag")  # engines keeping state: Key_Shared, one writer per key
FLOW_KEYS = ("max_concurrent", "max_starts_per_second", "flow_store", "flow_lease_ms", "flow_retry_ms")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    engine: str
    service: str | None
    parallelism: int
    config: dict[str, Any]
    partitions: int = 1  # of its input topic; 1 = a non-partitioned topic


@dataclass(frozen=True)
class Manifest:
    topics: Topics
    modules: list[str]
    state: str
    redis_url: str | None = field(repr=False)  # sent as a clear-text function secret, never in userConfig
    functions: list[FunctionSpec] = field(default_factory=list)
    bundle_library: bool = True  # ship the pulsarflow wheel in each package
    retention_ms: int | None = None  # keep a finished workflow's state this long (state: redis)
    # The secrets provider's reference to the Redis URL (the URL itself for the clear-text provider).
    redis_url_secret: str | dict[str, Any] | None = field(default=None, repr=False)
    folder: Path | None = None  # the manifest's folder: where its modules are looked for by default


def load(path: Path) -> Manifest:
    if not path.is_file():
        raise DefinitionError(f"no manifest at {path.resolve()}; run the command in your app's folder, pass "
                              "--manifest PATH, or create an app with `pulsarflow init DIR`")
    manifest = parse(_read_yaml(path), str(path))
    return dataclasses.replace(manifest, folder=path.resolve().parent)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError as exc:
        raise DefinitionError("the deploy tool needs PyYAML: pip install 'pulsarflow[pulsar]'") from exc
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DefinitionError(f"cannot read manifest {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise DefinitionError(f"manifest {path} must be a mapping of settings")
    return raw


def parse(raw: dict[str, Any], path: str = "manifest") -> Manifest:
    topics = Topics(raw.get("tenant", "public"), raw.get("namespace", "default"), raw.get("app", "pulsarflow"))
    functions = []
    for i, item in enumerate(raw.get("functions") or []):
        engine = item.get("engine")
        if engine not in ENTRY_POINTS:
            raise DefinitionError(f"{path}: functions[{i}].engine must be one of {sorted(ENTRY_POINTS)}, "
                                  f"got {engine!r}")
        if engine == "executor" and not item.get("service"):
            raise DefinitionError(f"{path}: functions[{i}] is an executor and needs 'service:'")
        batch = item.get("batch", 1)
        if not isinstance(batch, int) or batch < 1:
            raise DefinitionError(f"{path}: functions[{i}].batch must be a whole number >= 1 (messages handled "
                                  f"together; 1 handles them one by one), got {batch!r}")
        config = {**dict(item.get("config") or {}), **({"batch": batch} if batch > 1 else {}),
                  **_flow_settings(item, engine, f"{path}: functions[{i}]")}
        if "redis_url" in config:
            raise DefinitionError(f"{path}: functions[{i}].config.redis_url would reach the function in clear in "
                                  "its userConfig; set redis_url_secret (or redis_url) at the top of the manifest")
        parallelism, partitions = _scale_settings(item, f"{path}: functions[{i}]")
        functions.append(FunctionSpec(item.get("name") or f"{topics.app}-{engine}-{item.get('service', '')}",
                                      engine, item.get("service"), parallelism, config, partitions))
    _same_partitions_per_topic(topics, functions, path)
    state, retention, url, secret = _state_settings(raw, path)
    for i, spec in enumerate(functions):
        if spec.config.get("flow_store") == "redis" and not (url or secret):
            raise DefinitionError(f"{path}: functions[{i}].flow_store: redis keeps the leases in the app's Redis: "
                                  "set state: redis with redis_url or redis_url_secret, or use flow_store: function")
    modules = raw.get("modules") or []
    if not isinstance(modules, list) or not all(isinstance(m, str) and m for m in modules):
        raise DefinitionError(f"{path}: modules must be a list of module names, e.g. [shop.flows]")
    return Manifest(topics, list(modules), state, url, functions,
                    bool(raw.get("bundle_library", True)), retention, secret)


def _flow_settings(item: dict[str, Any], engine: str, where: str) -> dict[str, Any]:
    """An executor's flow-control keys (on the entry or in its config), checked now."""
    found = {**{k: item[k] for k in FLOW_KEYS if k in item}, **{k: v for k, v in dict(item.get("config") or {}).items()
                                                              if k in FLOW_KEYS}}
    if not found:
        return {}
    if engine != "executor":
        raise DefinitionError(f"{where}: {sorted(found)} limit an executor's service, not the {engine} engine")
    limit_from_config(found, where)
    store_from_config(found, where)
    return found


def _scale_settings(item: dict[str, Any], where: str) -> tuple[int, int]:
    """``parallelism`` and ``partitions`` of one function entry, checked against each other."""
    parallelism, partitions = item.get("parallelism", 1), item.get("partitions", 1)
    if isinstance(parallelism, str) and parallelism.strip().isdigit():
        parallelism = int(parallelism)  # as read before partitions existed
    elif isinstance(parallelism, float) and parallelism.is_integer():
        parallelism = int(parallelism)
    for key, value in (("parallelism", parallelism), ("partitions", partitions)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DefinitionError(f"{where}.{key} must be a whole number >= 1, got {value!r}")
    if parallelism < partitions:
        raise DefinitionError(f"{where} asks for {partitions} partitions but parallelism {parallelism}: each "
                              f"partition needs an instance of its own; set parallelism: {partitions} or more "
                              f"(or fewer partitions)")
    return parallelism, partitions


def _same_partitions_per_topic(topics: Topics, functions: list[FunctionSpec], path: str) -> None:
    counts: dict[str, set[int]] = {}
    for spec in functions:
        counts.setdefault(input_topic(topics, spec), set()).add(spec.partitions)
    clashes = sorted(topic for topic, found in counts.items() if len(found) > 1)
    if clashes:
        raise DefinitionError(f"{path}: functions reading {clashes[0]} ask for different partition counts "
                              f"{sorted(counts[clashes[0]])}: give them the same partitions:")


def input_topic(topics: Topics, spec: FunctionSpec) -> str:
    """The topic a function consumes."""
    return {"workflow": topics.workflow_engine, "tag": topics.tag_engine}.get(spec.engine) \
        or topics.executor(spec.service or "")


def partitioned_topics(manifest: Manifest) -> dict[str, int]:
    """Each input topic of the manifest and its partition count (1 = non-partitioned)."""
    return {input_topic(manifest.topics, spec): spec.partitions for spec in manifest.functions}


def _from_env(value: Any, path: str, key: str) -> Any:
    """``${VAR}`` read from the environment (a setting kept out of the file), anything else as is."""
    found = re.fullmatch(r"\$\{(\w+)\}", value) if isinstance(value, str) else None
    if found is None:
        return value
    if not os.environ.get(found.group(1)):
        raise DefinitionError(f"{path}: {key} is ${{{found.group(1)}}} but {found.group(1)} is not set; "
                              f"export {found.group(1)}=redis://... before deploying")
    return os.environ[found.group(1)]


def _state_settings(raw: dict[str, Any], path: str) -> tuple[str, int | None, str | None, str | dict[str, Any] | None]:
    state = parse_backend(raw.get("state"), path)
    retention = parse_retention(raw.get("retention_ms"), f"{path}: retention_ms")
    url = _from_env(raw.get("redis_url"), path, "redis_url")
    secret = _from_env(raw.get("redis_url_secret"), path, "redis_url_secret")
    if state == "function" and (url or secret or retention is not None):
        raise DefinitionError(f"{path}: redis_url, redis_url_secret and retention_ms need 'state: redis' "
                              "(Pulsar function state has no URL and cannot expire values)")
    if state == "redis" and not (url or secret):
        raise DefinitionError(f"{path}: state: redis needs redis_url (e.g. redis://127.0.0.1:6379/0) or "
                              "redis_url_secret (the name of a function secret holding the URL)")
    if url and (not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://"))):
        raise DefinitionError(f"{path}: redis_url must look like redis://host:6379/0 (or rediss://, unix://)")
    if secret is not None and not ((isinstance(secret, str) and secret) or (isinstance(secret, dict) and secret)):
        raise DefinitionError(f"{path}: redis_url_secret must be the secrets provider's reference to the Redis URL "
                              "(a name, a mapping, or with the clear-text provider the URL itself)")
    return state, retention, url, secret


def subscription_name(topics: Topics, engine: str) -> str:
    """The subscription an engine's consumers share: functions and ``pulsarflow worker`` alike."""
    return f"{topics.app}-{engine}"


def function_config(manifest: Manifest, spec: FunctionSpec, package_name: str) -> dict[str, Any]:
    """The FunctionConfig of one function, as pulsar-admin and the REST API take it."""
    topics = manifest.topics
    module, cls = ENTRY_POINTS[spec.engine]
    source = input_topic(topics, spec)
    user_config = {
        "release": __version__,  # which pulsarflow wrote it: the deploy tool upgrades older ones with care
        "engine": spec.engine, "modules": ",".join(manifest.modules), "tenant": topics.tenant,
        "namespace": topics.namespace, "app": topics.app, "state": manifest.state,
        **({"retention_ms": manifest.retention_ms} if manifest.retention_ms is not None else {}),
        **({"service": spec.service} if spec.engine == "executor" else {}),
        **spec.config,
    }
    reference = manifest.redis_url_secret or manifest.redis_url
    secrets = {"redis_url": reference} if reference else {}
    return {
        "tenant": topics.tenant,
        "namespace": topics.namespace,
        "name": spec.name,
        "runtime": "PYTHON",
        "className": f"{module}.{cls}",
        "py": package_name,
        "customSerdeInputs": {source: "pulsarflow.pulsar.function.RawBytesSerDe"},
        "subName": subscription_name(topics, spec.engine),
        "subscriptionPosition": "Earliest",
        # Key_Shared for the stateful engines: one writer per workflow id, per tag bucket.
        "retainKeyOrdering": spec.engine in STATEFUL,
        "processingGuarantees": "ATLEAST_ONCE",
        # A batching function acknowledges each message itself once its batch is handled.
        "autoAck": int(spec.config.get("batch", 1)) <= 1,
        "parallelism": spec.parallelism,
        "userConfig": user_config,
        **({"secrets": secrets} if secrets and (spec.engine in STATEFUL or spec.config.get("flow_store") == "redis")
           else {}),
    }


def is_clear_secret(reference: Any) -> bool:
    """Whether a secret's reference is the secret itself (a URL, as the clear-text provider takes it)."""
    return isinstance(reference, str) and "://" in reference


def redacted(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config`` without the secrets that are values (to write or print); and their names."""
    secrets = config.get("secrets") or {}
    clear = sorted(k for k, v in secrets.items() if is_clear_secret(v))
    if not clear:
        return config, []
    kept = {k: v for k, v in secrets.items() if k not in clear}
    out = {k: v for k, v in config.items() if k != "secrets"}
    return ({**out, "secrets": kept} if kept else out), clear
