"""Payload codecs: compression, encryption with key rotation and a claim check for large payloads,
applied to every user payload, end to end; what a process cannot decode is named, never misread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pulsarflow as pf
from pulsarflow.payloads import MARKER, AesGcmCodec, ClaimCheck, CodecChain, FolderStore, ZlibCodec
from pulsarflow.testing import TestEnvironment

K1, K2 = os.urandom(32), os.urandom(32)


@pf.task
def echo(text: str) -> str:
    return text + "!"


@pf.workflow
async def big(ctx: pf.WorkflowContext, text: str) -> dict[str, object]:
    reply = await ctx.task(echo, text)
    note = await ctx.wait_signal("note")
    return {"size": len(reply), "tail": reply[-5:], "note": note}


def chain(folder: Path, keys: dict[str, bytes] | None = None, current: str = "k1") -> CodecChain:
    return CodecChain([ZlibCodec(min_size=64), AesGcmCodec(keys or {"k1": K1}, current),
                       ClaimCheck(FolderStore(folder), threshold=100_000)])


def test_a_six_megabyte_argument_and_result_travel_compressed_encrypted_and_aside(tmp_path: Path) -> None:
    text = os.urandom(3 * 1024 * 1024).hex()  # 6 MiB that compress poorly: over the 5 MiB message limit
    env = TestEnvironment(echo, big, converter=chain(tmp_path))
    client = env.client()
    handle = client.start(big, text, id="big-1")
    client.signal("big-1", "note", "secret note")
    assert handle.result(timeout=60) == {"size": len(text) + 1, "tail": text[-4:] + "!", "note": "secret note"}
    stored = list(tmp_path.iterdir())
    assert stored and all(len(p.read_bytes()) < len(text) for p in stored)  # kept aside, compressed and sealed
    assert all(text[:64].encode() not in p.read_bytes() for p in stored)  # nothing readable in clear
    env.close()


def test_keys_rotate_and_a_missing_key_is_named(tmp_path: Path) -> None:
    old = chain(tmp_path, {"k1": K1}, "k1")
    sealed = old.encode(["hello"])
    assert sealed.startswith(MARKER)
    rotated = chain(tmp_path, {"k1": K1, "k2": K2}, "k2")
    assert rotated.decode(sealed) == ["hello"]
    assert rotated.decode(rotated.encode(["new"])) == ["new"]
    retired = chain(tmp_path, {"k2": K2}, "k2")
    with pytest.raises(pf.SerializationError, match="encrypted with key 'k1', which this process does not have"):
        retired.decode(sealed)
    wrong = chain(tmp_path, {"k1": K2}, "k1")
    with pytest.raises(pf.SerializationError, match="does not decrypt"):
        wrong.decode(sealed)


def test_a_chain_reads_plain_payloads_and_names_a_codec_it_lacks(tmp_path: Path) -> None:
    full = chain(tmp_path)
    assert full.decode(b'["plain"]') == ["plain"]  # written before the chain was configured
    only_zlib = CodecChain([ZlibCodec(min_size=64)])
    with pytest.raises(pf.SerializationError, match="codec 'aesgcm'"):
        only_zlib.decode(full.encode(["x" * 100]))
    empty = tmp_path / "empty"
    big_payload = full.encode([os.urandom(200_000).hex()])
    with pytest.raises(pf.SerializationError, match="is not in FolderStore"):
        chain(empty).decode(big_payload)


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
                    max_leaves=30))
def test_any_json_value_round_trips_through_the_chain(value: object) -> None:
    codec = CodecChain([ZlibCodec(min_size=16), AesGcmCodec({"k1": K1}, "k1")])
    assert codec.decode(codec.encode([value])) == [value]


def test_codec_names_must_be_distinct() -> None:
    with pytest.raises(pf.DefinitionError, match="distinct"):
        CodecChain([ZlibCodec(), ZlibCodec()])


def test_a_functions_user_config_builds_the_same_chain(tmp_path: Path) -> None:
    import base64
    import json

    from pulsarflow.payloads import chain_from_config

    keys = json.dumps({"current": "k1", "keys": {"k1": base64.b64encode(K1).decode()}})
    config = {"payload_codecs": "zlib,aesgcm,claim", "payload_store": f"folder:{tmp_path}",
              "payload_claim_bytes": "1000"}
    built = chain_from_config(config, {"payload_keys": keys}.get)
    assert chain(tmp_path).decode(built.encode(["x" * 5000])) == ["x" * 5000]  # one chain reads the other's
    assert chain_from_config({}).encode([1]) == b"[1]"
    with pytest.raises(pf.DefinitionError, match="no secret 'payload_keys'"):
        chain_from_config({"payload_codecs": "aesgcm"}, lambda _name: None)
    with pytest.raises(pf.DefinitionError, match="unknown payload codec 'rot13'"):
        chain_from_config({"payload_codecs": "zlib,rot13"})
    with pytest.raises(pf.DefinitionError, match="set payload_store"):
        chain_from_config({"payload_codecs": "claim"})
