"""Payload codecs attacked: hostile claim-check references, a missing store, a wrong or rotated key with
runs in flight, truncated and forged bytes, a payload right at the claim threshold, codec order."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pulsarflow as pf
from pulsarflow.payloads import (
    MARKER,
    AesGcmCodec,
    ClaimCheck,
    CodecChain,
    FolderStore,
    ZlibCodec,
    check_reference,
)
from pulsarflow.testing import TestEnvironment

K1, K2 = os.urandom(32), os.urandom(32)


def framed(names: str, body: bytes) -> bytes:
    """A payload as a chain writes it: the marker, the codec names, the body."""
    return MARKER + bytes([len(names)]) + names.encode() + body


class RecordingStore:
    """A payload store that records what it was asked for."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.asked: list[str] = []

    def put(self, ref: str, data: bytes) -> None:
        self.data[ref] = data

    def get(self, ref: str) -> bytes | None:
        self.asked.append(ref)
        return self.data.get(ref)


HOSTILE = ["../../etc/passwd", "/etc/passwd", "..", "", "a" * 64 + "/../x", "A" * 64, "0" * 63, "0" * 65,
           "0" * 32 + "\0" + "0" * 31, "x" * 10_000_000, "~/.ssh/id_rsa", "C:\\Windows\\win.ini"]


@pytest.mark.parametrize("ref", HOSTILE, ids=[r[:20].encode("unicode_escape").decode() for r in HOSTILE])
def test_a_hostile_claim_check_reference_reads_nothing_and_says_why(ref: str, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_text("not for payloads")
    store = RecordingStore()
    chain = CodecChain([ClaimCheck(store, threshold=64)])
    with pytest.raises(pf.SerializationError, match="is not one: a reference is the SHA-256"):
        chain.decode(framed("claim", ref.encode()))
    assert store.asked == []  # the store was never asked
    folder = FolderStore(tmp_path / "store")
    with pytest.raises(pf.SerializationError, match="is not one"):
        folder.get(ref)  # the folder store checks for itself, whoever calls it
    with pytest.raises(pf.SerializationError, match="is not one"):
        folder.put(ref, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret", "store"]
    assert list((tmp_path / "store").iterdir()) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80) | st.binary(max_size=80).map(lambda b: b.decode("latin-1")))
def test_no_reference_but_a_sha256_reaches_the_folder(ref: str) -> None:
    folder = Path(tempfile.mkdtemp())
    try:
        store = FolderStore(folder / "store")
        try:
            check_reference(ref)
        except pf.SerializationError:
            with pytest.raises(pf.SerializationError, match="is not one"):
                store.get(ref)
        else:
            assert store.get(ref) is None  # 64 hex digits: looked up inside the folder, and not there
    finally:
        shutil.rmtree(folder)


def test_a_claim_check_folder_that_disappeared_is_named(tmp_path: Path) -> None:
    chain = CodecChain([ClaimCheck(FolderStore(tmp_path / "store"), threshold=64)])
    payload = chain.encode(["x" * 200])
    assert chain.decode(payload) == ["x" * 200]
    shutil.rmtree(tmp_path / "store")
    with pytest.raises(pf.SerializationError, match="folder .* does not exist"):
        chain.decode(payload)


def test_a_payload_right_at_the_threshold_is_kept_aside_one_byte_less_travels() -> None:
    store = RecordingStore()
    chain = CodecChain([ClaimCheck(store, threshold=100)])
    at = "a" * 96  # JSON '["' + 96 + '"]' = 100 bytes
    below = "a" * 95
    assert len(chain.converter.encode([at])) == 100
    kept = chain.encode([at])
    assert kept.startswith(MARKER) and len(store.data) == 1 and len(kept) < 100
    assert chain.encode([below]) == chain.converter.encode([below])  # under the threshold: as it is
    assert chain.decode(kept) == [at] and chain.decode(chain.encode([below])) == [below]


def test_a_chain_in_another_order_reads_what_a_chain_wrote() -> None:
    written = CodecChain([ZlibCodec(min_size=16), AesGcmCodec({"k1": K1}, "k1")]).encode(["y" * 500])
    reader = CodecChain([AesGcmCodec({"k1": K1}, "k1"), ZlibCodec(min_size=16)])
    assert reader.decode(written) == ["y" * 500]  # each payload names its codecs, in the order applied


def test_codec_names_that_do_not_fit_the_marker_are_refused_when_the_chain_is_built() -> None:
    class Named(ZlibCodec):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    with pytest.raises(pf.DefinitionError, match="255 in all"):
        CodecChain([Named(f"{i}" * 40) for i in range(7)])  # 7 x 40 + commas > 255


def test_a_truncated_or_forged_encrypted_payload_is_a_serialization_error() -> None:
    chain = CodecChain([AesGcmCodec({"k1": K1}, "k1")])
    sealed = chain.encode(["hello"])
    for cut in range(len(MARKER) + 1, len(sealed)):
        with pytest.raises(pf.SerializationError):
            chain.decode(sealed[:cut])
    with pytest.raises(pf.SerializationError, match="truncated"):
        chain.decode(framed("aesgcm", b"\x02k1" + b"\0" * 5))


def test_a_zlib_payload_that_would_inflate_past_the_bound_is_refused() -> None:
    bomb = framed("zlib", zlib.compress(b"[" + b" " * 2_000_000 + b"]"))
    with pytest.raises(pf.SerializationError, match="inflates past 1,000,000 bytes"):
        CodecChain([ZlibCodec(max_size=1_000_000)]).decode(bomb)
    assert CodecChain([ZlibCodec()]).decode(bomb) == []  # the default bound (1 GiB) takes it
    with pytest.raises(pf.SerializationError, match="truncated"):
        CodecChain([ZlibCodec()]).decode(framed("zlib", zlib.compress(b"[1]" * 100)[:-6]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["zlib", "aesgcm", "claim", "aesgcm,zlib", "zlib,aesgcm,claim", "nope", ""]),
       st.binary(max_size=200))
def test_any_bytes_decode_or_raise_a_serialization_error(names: str, body: bytes) -> None:
    folder = Path(tempfile.mkdtemp())
    try:
        chain = CodecChain([ZlibCodec(min_size=16), AesGcmCodec({"k1": K1}, "k1"),
                            ClaimCheck(FolderStore(folder), threshold=64)])
        for data in (framed(names, body), MARKER + body, body):
            with contextlib.suppress(pf.SerializationError):  # named; anything else fails the test
                chain.decode(data)
        assert [p.name for p in folder.iterdir()] == []
    finally:
        shutil.rmtree(folder)


# -- end to end: a key the engines lack, and keys rotated while runs are in flight -------------------------


class Keys:
    """An AES-GCM codec whose keys the test changes, as a deploy of new keys would."""

    name = "aesgcm"

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        self.use(keys, current)

    def use(self, keys: dict[str, bytes], current: str) -> None:
        self.codec = AesGcmCodec(keys, current)

    def encode(self, data: bytes) -> bytes:
        return self.codec.encode(data)

    def decode(self, data: bytes) -> bytes:
        return self.codec.decode(data)


@pf.task
def shout(text: str) -> str:
    return text.upper()


@pf.workflow
async def sealed(ctx: pf.WorkflowContext, text: str) -> str:
    loud = await ctx.task(shout, text)
    note = await ctx.wait_signal("note")
    return f"{loud} {note}"


@pytest.mark.parametrize("cache", [None, 0], ids=["cached", "replayed"])
def test_a_signal_sealed_with_a_key_the_engines_lack_blocks_the_run_and_is_kept(cache: int | None) -> None:
    engines = Keys({"k1": K1}, "k1")
    env = TestEnvironment(shout, sealed, converter=CodecChain([engines]), raise_on_blocked=False,
                          workflow_cache=cache)
    client = env.client()
    handle = client.start(sealed, "hi", id="sealed-1")
    env.run_until_idle()
    from pulsarflow.sdk.client import Client

    newer = Client(client.connection, client.codec, client.topics,
                   converter=CodecChain([AesGcmCodec({"k2": K2}, "k2")]))
    newer.signal("sealed-1", "note", "from a newer client")  # accepted: the engine records it
    described = client.status("sealed-1")
    assert described.status == "RUNNING" and described.blocked is not None
    assert "key 'k2', which this process does not have" in described.blocked.reason.message
    assert "signal" in described.blocked.reason.message
    engines.use({"k1": K1, "k2": K2}, "k1")  # the key is deployed: the blocked run resumes on its timer
    env.advance(10)
    assert handle.result() == "HI from a newer client"
    env.close()


@pytest.mark.parametrize("cache", [None, 0], ids=["cached", "replayed"])
def test_keys_rotated_while_a_run_is_in_flight(cache: int | None) -> None:
    keys = Keys({"k1": K1}, "k1")
    env = TestEnvironment(shout, sealed, converter=CodecChain([keys]), workflow_cache=cache)
    client = env.client()
    handle = client.start(sealed, "rotate", id="sealed-2")
    env.run_until_idle()  # input and task result sealed with k1
    keys.use({"k1": K1, "k2": K2}, "k2")  # rotation: k2 seals from now on, k1 still reads
    client.signal("sealed-2", "note", "after rotation")
    assert handle.result() == "ROTATE after rotation"
    history = env.state("sealed-2")
    assert history is not None
    named = {a.value[len(MARKER) + 1 + len("aesgcm") + 1:][:2] for a in history.arrivals if a.value}
    assert named == {b"k1"}
    assert history.result is not None and b"k2" in history.result[:20]  # the result: sealed with the new key
    env.close()
