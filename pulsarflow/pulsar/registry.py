"""Writer schemas from Pulsar's schema registry, for identities no frozen release knows.

The deploy tool registers each topic's wire schema (``Codec.wire_schema``) before a new
release's engines run, so a message a newer release wrote names a writer schema that is
the latest version of its topic's schema. An engine that meets such an identity (during a
rollback, or while a rolling deploy has not reached it yet) asks the registry once, over
the client's own connection (no admin credentials needed), and reads the message with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pulsarflow.codec import Codec
from pulsarflow.errors import BackendError, SchemaError
from pulsarflow.topics import Topics

try:
    import _pulsar
    import pulsar
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the schema registry needs the pulsar client: pip install 'pulsarflow[pulsar]'") from exc

LATEST = -1  # the client's version number for the newest schema of a topic
NO_SCHEMA = (pulsar.exceptions.TopicNotFound,)  # the topic has no schema (or does not exist)


class RegistryWriters:
    """A ``WriterSource`` (pulsarflow.codec) that reads the newest schema of the topics carrying a record."""

    def __init__(self, client: Any, topics_by_record: dict[str, list[str]]) -> None:
        self.client = getattr(client, "_client", client)  # the schema lookup lives on the native client
        self.topics_by_record = topics_by_record

    def writer_schemas(self, name: str) -> list[dict[str, Any]]:
        found = []
        for topic in self.topics_by_record.get(name.rsplit(".", 1)[-1], []):
            try:
                info = self.client.get_schema_info(topic, LATEST)
            except NO_SCHEMA:
                continue
            except Exception as exc:
                raise BackendError(f"cannot read the schema of {topic} from the registry: {exc}") from exc
            if info.schema_type() == _pulsar.SchemaType.AVRO:
                try:
                    found.append(json.loads(info.schema()))
                except ValueError:
                    continue  # not JSON: not an Avro schema this codec could use
        return found


def engines_release(client: Any, codec: Codec, topic: str) -> str | None:
    """The frozen release whose engines read ``topic``, as its registered schema tells; None for this one.

    The deploy of each release registers its own schema of the topic's record, so the newest
    schema names the release deployed last. None when it is this release's, a newer one's
    (that release reads what this one writes), or when there is none (not deployed yet).
    """
    try:
        info = getattr(client, "_client", client).get_schema_info(topic, LATEST)
    except NO_SCHEMA:
        return None
    except Exception as exc:
        raise BackendError(f"cannot read the schema of {topic} from the registry: {exc}") from exc
    try:
        release = codec.release_of(json.loads(info.schema()))
    except (ValueError, SchemaError, AttributeError):
        return None
    return None if release in (None, "current") else release


def registry_writers(client: Any, topics: Topics, services: Iterable[str] = ()) -> RegistryWriters:
    """The registry lookups for the records on the app's topics."""
    by_record: dict[str, list[str]] = {}
    for topic, record in topics.envelopes(services).items():
        by_record.setdefault(record, []).append(topic)
    return RegistryWriters(client, by_record)
