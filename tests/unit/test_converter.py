"""The JSON converter's errors say what wrote a payload it cannot read."""

from __future__ import annotations

import pytest

from pulsarflow.converter import JsonConverter
from pulsarflow.errors import SerializationError


def test_a_payload_written_through_codecs_names_them_when_read_without_them() -> None:
    from pulsarflow.payloads import CodecChain, ZlibCodec

    written = CodecChain([ZlibCodec(min_size=1)]).encode(["x" * 100])
    with pytest.raises(SerializationError, match=r"payload codec chain \(zlib\): give this process the same codecs"):
        JsonConverter().decode(written)
