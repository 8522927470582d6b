"""Messages consumed by the tag engine, keyed by tag bucket (or custom id), and its state."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Union

from pulsarflow.messages.common import ReplyTo
from pulsarflow.messages.workflow import StartWorkflow

TAG_STATE_SCHEMA_VERSION = 1

# A tag's workflow ids are spread over this many keys, so that no state value, and no
# page of work, grows with the number of workflows carrying the tag.
TAG_BUCKETS = 64
CUSTOM_ID_PREFIX = "customId:"


def tag_key(tag: str, workflow_id: str) -> str:
    """The bucket of ``tag`` holding ``workflow_id``; a custom id is its own single key."""
    if tag.startswith(CUSTOM_ID_PREFIX):
        return tag
    return f"{tag}#{zlib.crc32(workflow_id.encode()) % TAG_BUCKETS:02d}"


def tag_buckets(tag: str) -> list[str]:
    """Every key of ``tag`` (a client asking for its ids asks each)."""
    return [f"{tag}#{bucket:02d}" for bucket in range(TAG_BUCKETS)]

# Values of TagOperation.action.
SIGNAL = "signal"
CANCEL = "cancel"
RETRY = "retry"


@dataclass(frozen=True, slots=True)
class AddTag:
    workflow_id: str


@dataclass(frozen=True, slots=True)
class RemoveTag:
    workflow_id: str


@dataclass(frozen=True, slots=True)
class TagOperation:
    operation_id: str
    action: str
    signal_name: str | None = None
    data: bytes | None = None
    reason: str = ""
    after: str | None = None


@dataclass(frozen=True, slots=True)
class ListTagIds:
    limit: int
    reply: ReplyTo
    after: str | None = None


@dataclass(frozen=True, slots=True)
class StartByCustomId:
    workflow_id: str
    start: StartWorkflow
    reply: ReplyTo


TagInput = Union[AddTag, RemoveTag, TagOperation, ListTagIds, StartByCustomId]


@dataclass(frozen=True, slots=True)
class TagEngineMessage:
    message_id: str
    tag_key: str
    sent_at_ms: int
    message: TagInput


@dataclass(frozen=True, slots=True)
class TagState:
    tag_key: str
    workflow_ids: tuple[str, ...] = ()
    schema_version: int = TAG_STATE_SCHEMA_VERSION
    ended: tuple[str, ...] = ()
