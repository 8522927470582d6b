"""What the runtime lets in and out, so that the pure engines can trust what they are handed.

In: a message's key within the limits (docs/reliability.md), and every reply topic it names
one of the app's own client topics (``Topics.client``). A message that fails either is
refused (``MessageRefusedError``) and dead-lettered with the reason; nothing it asked for
happens, so a message cannot make an engine publish, with the engine's credentials, to a
topic of its choosing.

Out: every message the engines decide to send goes to one of the app's topics and fits
under the broker's limit. A message for another topic can only come from a reply topic
recorded before these checks existed; it is not sent (the caller dead-letters it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pulsarflow.errors import TopicRefusedError
from pulsarflow.messages import ReplyTo
from pulsarflow.runtime.limits import DEFAULT_MAX_MESSAGE_BYTES, MAX_KEY_CHARS, check_id, check_size
from pulsarflow.topics import Topics

# The part of a topic name after the app's prefix: characters Pulsar allows in a topic's local name.
NAME_PART = re.compile(r"[A-Za-z0-9_.=:%-]{1,200}")


class Admission:
    """The checks of one app's topics and limits."""

    def __init__(self, topics: Topics, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.topics = topics
        self.max_message_bytes = max_message_bytes
        self._client_prefix = topics.client("")
        self._executor_prefix = topics.executor("")
        self._fixed = {topics.workflow_engine, topics.tag_engine, topics.events, topics.dead_letters,
                       topics.cancellations}

    def check_input(self, key: str, envelope: Any) -> None:
        """Refuse a message whose key is out of limits or that names a reply topic the app does not own."""
        check_id(f"the key of this {type(envelope).__name__}", key, MAX_KEY_CHARS)
        for reply in replies(envelope):
            if not self.is_client_topic(reply.topic):
                raise TopicRefusedError(
                    f"reply topic {reply.topic[:300]!r} of this {type(envelope).__name__} is not a client topic of "
                    f"app {self.topics.app!r} ({self._client_prefix}<client id>): refused, nothing was done or "
                    "sent; clients of this app get their reply topic from pulsarflow's Client")

    def check_output(self, topic: str, key: str, payload: bytes) -> None:
        """Refuse (TopicRefusedError, LimitExceededError) a message the runtime must not publish."""
        if not self.is_app_topic(topic):
            raise TopicRefusedError(f"refused to publish to {topic[:300]!r}: not one of app {self.topics.app!r}'s "
                                    "topics (a reply topic recorded by an older release?)")
        check_size(f"a message for {topic}", payload, key, self.max_message_bytes)

    def is_client_topic(self, topic: str) -> bool:
        return _has_part(topic, self._client_prefix)

    def is_app_topic(self, topic: str) -> bool:
        return topic in self._fixed or self.is_client_topic(topic) or _has_part(topic, self._executor_prefix)


def _has_part(topic: str, prefix: str) -> bool:
    return topic.startswith(prefix) and NAME_PART.fullmatch(topic, len(prefix)) is not None


def replies(envelope: Any) -> Iterator[ReplyTo]:
    """Every ReplyTo a message carries: its ``reply``, that of the start a StartByCustomId or a
    signal- or update-with-start makes, and that of the signal or update it brings.

    These are the only places the schemas put one in an engine's input
    (``tests/unit/test_limits_and_topics.py`` checks it against schemas/).
    """
    message = getattr(envelope, "message", None)
    for holder in (message, *(getattr(message, part, None) for part in ("start", "signal", "update"))):
        reply = getattr(holder, "reply", None)
        if isinstance(reply, ReplyTo):
            yield reply
