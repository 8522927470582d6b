"""Reading functions.yaml into Pulsar FunctionConfig dictionaries.

The produced dictionaries are exactly what ``pulsar-admin functions create
--function-config-file`` takes (and what the admin REST API takes as ``functionConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulsarflow import __version__
from pulsarflow.errors import DefinitionError
from pulsarflow.storage.config import parse_backend, parse_retention
from pulsarflow.topics import Topics

ENTRY_POINTS = {
    "workflow": ("workflow_engine", "WorkflowEngineFunction"),
    "executor": ("task_executor", "TaskExecutorFunction"),
    "tag": ("tag_engine", "TagEngineFunction"),
}
STATEFUL = ("workflow", "tag")  # engines keeping state: Key_Shared, one writer per key


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    engine: str
    service: str | None
    parallelism: int
    config: dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    topics: Topics
    modules: list[str]
    state: str
    redis_url: str | None
    functions: list[FunctionSpec] = field(default_factory=list)
    bundle_library: bool = True  # ship the pulsarflow wheel in each package
    retention_ms: int | None = None  # keep a finished workflow's state this long (state: redis)
    redis_url_secret: str | None = None  # the function secret holding the Redis URL


def load(path: Path) -> Manifest:
    return parse(_read_yaml(path), str(path))


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
        config = {**dict(item.get("config") or {}), **({"batch": batch} if batch > 1 else {})}
        functions.append(FunctionSpec(item.get("name") or f"{topics.app}-{engine}-{item.get('service', '')}",
                                      engine, item.get("service"), int(item.get("parallelism", 1)), config))
    state, retention, secret = _state_settings(raw, path)
    return Manifest(topics, list(raw.get("modules") or []), state, raw.get("redis_url"), functions,
                    bool(raw.get("bundle_library", True)), retention, secret)


def _state_settings(raw: dict[str, Any], path: str) -> tuple[str, int | None, str | None]:
    state = parse_backend(raw.get("state"), path)
    retention = parse_retention(raw.get("retention_ms"), f"{path}: retention_ms")
    url, secret = raw.get("redis_url"), raw.get("redis_url_secret")
    if state == "function" and (url or secret or retention is not None):
        raise DefinitionError(f"{path}: redis_url, redis_url_secret and retention_ms need 'state: redis' "
                              "(Pulsar function state has no URL and cannot expire values)")
    if state == "redis" and not (url or secret):
        raise DefinitionError(f"{path}: state: redis needs redis_url (e.g. redis://127.0.0.1:6379/0) or "
                              "redis_url_secret (the name of a function secret holding the URL)")
    if url and (not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://"))):
        raise DefinitionError(f"{path}: redis_url must look like redis://host:6379/0 (or rediss://, unix://)")
    if secret is not None and not (isinstance(secret, str) and secret):
        raise DefinitionError(f"{path}: redis_url_secret must be the name (or path) of a function secret")
    return state, retention, secret


def subscription_name(topics: Topics, engine: str) -> str:
    """The subscription an engine's consumers share: functions and ``pulsarflow worker`` alike."""
    return f"{topics.app}-{engine}"


def function_config(manifest: Manifest, spec: FunctionSpec, package_name: str) -> dict[str, Any]:
    """The FunctionConfig of one function, as pulsar-admin and the REST API take it."""
    topics = manifest.topics
    module, cls = ENTRY_POINTS[spec.engine]
    source = {"workflow": topics.workflow_engine, "tag": topics.tag_engine}.get(spec.engine) \
        or topics.executor(spec.service or "")
    user_config = {
        "release": __version__,  # which pulsarflow wrote it: the deploy tool upgrades older ones with care
        "engine": spec.engine, "modules": ",".join(manifest.modules), "tenant": topics.tenant,
        "namespace": topics.namespace, "app": topics.app, "state": manifest.state,
        **({"redis_url": manifest.redis_url} if manifest.redis_url else {}),
        **({"retention_ms": manifest.retention_ms} if manifest.retention_ms is not None else {}), **spec.config,
    }
    secrets = {"redis_url": manifest.redis_url_secret} if manifest.redis_url_secret else {}
    return {
        "tenant": topics.tenant,
        "namespace": topics.namespace,
        "name": spec.name,
        "runtime": "PYTHON",
        "className": f"{module}.{cls}",
        "py": package_name,
        "customSerdeInputs": {source: "pulsarflow.functions.RawBytesSerDe"},
        "subName": subscription_name(topics, spec.engine),
        "subscriptionPosition": "Earliest",
        # Key_Shared for the stateful engines: one writer per workflow id, per tag bucket.
        "retainKeyOrdering": spec.engine in STATEFUL,
        "processingGuarantees": "ATLEAST_ONCE",
        # A batching function acknowledges each message itself once its batch is handled.
        "autoAck": int(spec.config.get("batch", 1)) <= 1,
        "parallelism": spec.parallelism,
        "userConfig": user_config,
        **({"secrets": secrets} if secrets and spec.engine in STATEFUL else {}),
    }
