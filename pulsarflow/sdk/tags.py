"""Tags and custom ids, from the client: find workflows by tag, act on all of them, start by custom id."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pulsarflow.errors import DefinitionError, SerializationError
from pulsarflow.messages import CustomIdAnswer, ListTagIds, StartByCustomId, StartWorkflow, TagIds, TagOperation
from pulsarflow.messages import tags as tags_messages
from pulsarflow.sdk.base import ClientBase


class TagRequests(ClientBase):
    """The client's requests to the tag engine (see docs/workflows.md, "Tags and custom ids")."""

    def find_ids(self, tag: str, page_size: int = 1000, timeout: float | None = 30.0) -> list[str]:
        """Ids of the running (and failed) workflows carrying ``tag``, read a page at a time from every bucket."""
        (tag,) = check_tags([tag])
        pending: dict[str, str | None] = {key: None for key in tags_messages.tag_buckets(tag)}
        found: list[str] = []
        while pending:
            asked = {}
            for key, after in pending.items():
                reply = self._reply_to()
                self._send_tag(key, ListTagIds(page_size, reply, after=after))
                asked[key] = reply.request_id
            pending = {}
            for key, request_id in asked.items():
                page = self._expect(self._await(request_id, tag, timeout), TagIds)
                found.extend(page.workflow_ids)
                if page.next_after is not None:
                    pending[key] = page.next_after
        return found

    def signal_tag(self, tag: str, name: str, data: Any = None) -> str:
        """Send signal ``name`` to every running workflow carrying ``tag``; returns the operation id."""
        try:
            payload = self.converter.encode([data])
        except SerializationError as exc:
            raise SerializationError(f"data of signal {name!r} cannot be serialized: {exc}") from exc
        return self._tag_operation(tag, TagOperation(uuid.uuid4().hex, tags_messages.SIGNAL, name, payload))

    def cancel_tag(self, tag: str, reason: str = "cancelled by a client") -> str:
        """Cancel every running workflow carrying ``tag``; returns the operation id."""
        return self._tag_operation(tag, TagOperation(uuid.uuid4().hex, tags_messages.CANCEL, reason=reason))

    def retry_tag(self, tag: str) -> str:
        """Retry every failed workflow carrying ``tag`` (see ``retry``); returns the operation id.

        Failed workflows stay under their tags until they complete or are cancelled.
        """
        return self._tag_operation(tag, TagOperation(uuid.uuid4().hex, tags_messages.RETRY))

    def _start_by_custom_id(self, custom_id: str, workflow_id: str, start: StartWorkflow) -> str:
        if not custom_id:
            raise DefinitionError("custom_id must be a non-empty string")
        reply = self._reply_to()
        key = tags_messages.CUSTOM_ID_PREFIX + custom_id
        self._send_tag(key, StartByCustomId(workflow_id, start, reply))
        answer = self._expect(self._await(reply.request_id, key, 30.0), CustomIdAnswer)
        return str(answer.workflow_id)

    def _tag_operation(self, tag: str, operation: TagOperation) -> str:
        """Send ``operation`` to every bucket of ``tag``; each works through its ids a page at a time."""
        (tag,) = check_tags([tag])
        for key in tags_messages.tag_buckets(tag):
            self._send_tag(key, operation)
        return operation.operation_id


def check_tags(tags: Iterable[str]) -> tuple[str, ...]:
    if isinstance(tags, str):
        raise DefinitionError(f"tags must be a list of strings, got the string {tags!r}; write tags=[{tags!r}]")
    checked = tuple(dict.fromkeys(tags))
    for tag in checked:
        if not isinstance(tag, str) or not tag:
            raise DefinitionError(f"a tag must be a non-empty string, got {tag!r}")
        if tag.startswith(tags_messages.CUSTOM_ID_PREFIX):
            raise DefinitionError(f"tag {tag!r}: the prefix {tags_messages.CUSTOM_ID_PREFIX!r} is reserved; "
                                  "pass custom_id= to start at most one running workflow per id")
    return checked
