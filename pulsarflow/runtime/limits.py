"""The documented limits on ids, keys and message sizes, checked by clients and engines alike.

Why these numbers (docs/reliability.md):

- **Ids** (workflow ids, custom ids, tags) hold at most ``MAX_ID_CHARS`` characters. Every
  state backend takes them as keys; Pulsar function state fails with gRPC ``UNAVAILABLE``
  on keys of about 10,000 characters, so the limit stays well under it. Clients refuse
  longer ids. Engines accept keys of up to ``MAX_KEY_CHARS``: the room above the id limit
  is for what the engines add to ids (``customId:`` and ``#07`` for tag keys, ``/r2/3``
  for each level of child workflows); a message with a longer key is dead-lettered. Ids
  must not be empty and must not contain NUL (function state builds the keys of a large
  value's chunks with NUL separators).
- **Messages** must fit the broker's ``maxMessageSize`` (5 MiB by default), metadata
  included: ``MESSAGE_RESERVE_BYTES`` are kept free for it.
"""

from __future__ import annotations

from pulsarflow.errors import LimitExceededError
from pulsarflow.storage import is_part_key

MAX_ID_CHARS = 1_000
MAX_KEY_CHARS = 2 * MAX_ID_CHARS
MAX_TAG_KEY_CHARS = MAX_ID_CHARS + 16  # a tag or custom id with the tag engine's prefix (customId:) or suffix (#07)
DEFAULT_MAX_MESSAGE_BYTES = 5 * 1024 * 1024  # the broker's maxMessageSize default (5,242,880)
MESSAGE_RESERVE_BYTES = 16 * 1024  # message metadata: key, properties, ids


def check_id(what: str, value: object, limit: int = MAX_ID_CHARS) -> str:
    """``value`` if it is a usable id; LimitExceededError saying what is wrong otherwise."""
    if not isinstance(value, str) or not value:
        raise LimitExceededError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > limit:
        raise LimitExceededError(
            f"{what} has {len(value):,} characters; at most {limit:,} are allowed (state stores take ids "
            f"as keys): use a shorter id, e.g. a hash of the long one ({value[:40]!r}...)")
    if "\0" in value:
        raise LimitExceededError(f"{what} {value[:40]!r} contains a NUL character, which ids may not hold")
    if is_part_key(value):
        raise LimitExceededError(f"{what} {value[:60]!r} ends like the key of a history chunk (\\x1fh<epoch>."
                                 "<index>), which function state reserves: use another id")
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise LimitExceededError(f"{what} {value[:40]!r} is not valid unicode text: {exc.reason}") from None
    return value


def message_budget(max_message_bytes: int) -> int:
    """Bytes a message's payload plus key may take under a broker limit of ``max_message_bytes``."""
    return max_message_bytes - MESSAGE_RESERVE_BYTES


def check_size(what: str, payload: bytes, key: str, max_message_bytes: int) -> None:
    """LimitExceededError if ``payload`` with ``key`` would not fit under the broker's limit."""
    size = len(payload) + len(key.encode(errors="replace"))
    if size > message_budget(max_message_bytes):
        raise LimitExceededError(
            f"{what} is {size:,} bytes encoded; the broker accepts {max_message_bytes:,} bytes per message "
            f"(maxMessageSize), of which {MESSAGE_RESERVE_BYTES:,} are kept for metadata. Pass large data by "
            "reference (store it elsewhere and pass its key or URL), or raise maxMessageSize on the broker "
            "and max_message_bytes in pulsarflow to match")
