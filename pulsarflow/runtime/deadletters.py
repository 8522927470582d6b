"""Dead letters that always fit under the broker's limit, and say why in words.

A message that can never be handled is published to the app's dead-letter topic as a
``DeadLetter``: the topic it came from, its key, a reason, its kind, how often it was
tried, and its bytes. A payload too large to travel whole inside a letter (the original
may itself be close to ``maxMessageSize``) is cut to its first ``PREFIX_BYTES``, and the
letter says so (``truncated``, ``size``, ``sha256``, and a note in the reason). Such a
letter can be read but not replayed.
"""

from __future__ import annotations

import hashlib

from pulsarflow.messages import DeadLetter
from pulsarflow.runtime.limits import DEFAULT_MAX_MESSAGE_BYTES, MAX_KEY_CHARS, message_budget

# DeadLetter.kind
UNDECODABLE = "undecodable"  # the bytes are not a message of the topic's schema
REFUSED = "refused"  # over a limit, or naming a topic the app does not own
CRASH = "crash"  # an engine failed on it, every attempt
UNREADABLE_STATE = "unreadable-state"  # the stored state of its key cannot be read
KINDS = (UNDECODABLE, REFUSED, CRASH, UNREADABLE_STATE)

PREFIX_BYTES = 64 * 1024  # what a truncated letter keeps of its payload
REASON_CHARS = 4_000  # a longer reason (a huge exception text) is cut
LETTER_OVERHEAD = 4 * REASON_CHARS + 1_024  # reason (UTF-8), sha256, numbers, field lengths


def build_dead_letter(topic: str, payload: bytes, reason: str, kind: str, at_ms: int, key: str = "",
                      attempts: int = 1, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> DeadLetter:
    """A letter for ``payload`` that fits in one message under ``max_message_bytes``."""
    digest = hashlib.sha256(payload).hexdigest()
    key = key[:MAX_KEY_CHARS]  # a key over the limit may be why it is here: keep enough to recognise it
    if len(reason) > REASON_CHARS:
        reason = reason[:REASON_CHARS - 20] + " ... (reason cut)"
    room = message_budget(max_message_bytes) - LETTER_OVERHEAD - len(topic.encode()) - 2 * len(key.encode())
    truncated = len(payload) > room
    kept = payload[:min(PREFIX_BYTES, max(room, 0))] if truncated else payload
    if truncated:
        reason += (f" [payload truncated: the first {len(kept):,} of {len(payload):,} bytes are kept, "
                   f"sha256 {digest}; this letter cannot be replayed]")
    return DeadLetter(topic=topic, reason=reason, payload=kept, size=len(payload), at_ms=at_ms, key=key,
                      kind=kind, attempts=attempts, sha256=digest, truncated=truncated)
