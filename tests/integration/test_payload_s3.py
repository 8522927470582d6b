"""S3Store against a local S3-compatible server: moto's server mode (``moto[server]``, the ``test`` extra).

moto emulates the S3 REST API (buckets, objects, errors such as NoSuchKey and NoSuchBucket)
over HTTP, so boto3 talks to it as to S3. The server is started on 127.0.0.1 for this
module and stopped afterwards; it skips locally when moto or boto3 is missing, fails under
CI=true.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pulsarflow.errors import DefinitionError, SerializationError
from pulsarflow.payloads import ClaimCheck, CodecChain, ZlibCodec

BUCKET = "pulsarflow-payloads"


def _absent(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    for module in ("boto3", "moto", "flask"):
        if importlib.util.find_spec(module) is None:
            _absent(f"{module} is missing: pip install -e '.[test]' (boto3 and moto[server])")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    _absent(f"the moto server did not start: {log.read_text()[-1000:]}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=15)


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto accepts any credentials; boto3 wants some (none from this machine's ~/.aws)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def store(endpoint: str) -> Any:
    from pulsarflow.payload_s3 import S3Store

    made = S3Store(BUCKET, prefix="it/", endpoint_url=endpoint)
    try:
        made.client.create_bucket(Bucket=BUCKET)
    except Exception as exc:
        if "BucketAlreadyOwnedByYou" not in str(exc):
            raise
    return made


def ref_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_then_get_and_none_for_a_payload_it_does_not_hold(store: Any) -> None:
    data = os.urandom(1000)
    assert store.get(ref_of(data)) is None
    store.put(ref_of(data), data)
    assert store.get(ref_of(data)) == data
    listed = store.client.list_objects_v2(Bucket=BUCKET, Prefix="it/")["Contents"]
    assert f"it/{ref_of(data)}" in [o["Key"] for o in listed]


def test_a_payload_already_stored_is_not_sent_again(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"same bytes " * 20
    sent: list[str] = []
    put_object = store.client.put_object

    def counting(**kwargs: Any) -> Any:
        sent.append(kwargs["Key"])
        return put_object(**kwargs)

    monkeypatch.setattr(store.client, "put_object", counting)
    store.put(ref_of(data), data)
    store.put(ref_of(data), b"would overwrite")  # a second writer of the same reference
    assert sent == [f"it/{ref_of(data)}"]
    assert store.get(ref_of(data)) == data


def test_a_forged_reference_is_refused_before_any_request(store: Any) -> None:
    class NoCalls:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"S3 was asked ({name}) for a forged reference")

    from pulsarflow.payload_s3 import S3Store

    guarded = S3Store(BUCKET, client=NoCalls())
    for forged in ("../../etc/passwd", "/etc/passwd", "A" * 64, ""):
        with pytest.raises(SerializationError, match="is not one"):
            guarded.get(forged)
        with pytest.raises(SerializationError, match="is not one"):
            guarded.put(forged, b"x")


def test_a_claim_check_keeps_large_payloads_in_the_bucket(store: Any) -> None:
    chain = CodecChain([ZlibCodec(), ClaimCheck(store, threshold=64)])
    value = {"rows": [os.urandom(8).hex() for _ in range(400)]}  # incompressible enough to pass 64 bytes
    encoded = chain.encode([value])
    assert len(encoded) < 120  # the marker and the reference travel, not the payload
    assert chain.decode(encoded) == [value]
    assert chain.decode(chain.encode(["small"])) == ["small"]


def test_an_embedded_workflow_returns_a_result_kept_in_the_bucket(store: Any) -> None:
    import pulsarflow as pf

    @pf.task
    def big(n: int) -> str:
        return "x" * n

    @pf.workflow(name="s3-big")
    async def wf(ctx: pf.WorkflowContext, n: int) -> str:
        return await ctx.task(big, n)

    seen: list[str] = []
    original = store.put

    def counting(ref: str, data: bytes) -> None:
        seen.append(ref)
        original(ref, data)

    store.put = counting
    env = pf.EmbeddedEnvironment(wf, big, converter=CodecChain([ClaimCheck(store, threshold=1024)]))
    assert env.client().start(wf, 300_000, id="s3-big-1").result(timeout=60) == "x" * 300_000
    assert seen and all(store.get(ref) is not None for ref in seen)


def test_errors_name_the_bucket_and_the_fix_without_credentials(endpoint: str) -> None:
    from pulsarflow.payload_s3 import S3Store

    missing = S3Store("no-such-bucket-here", endpoint_url=endpoint)
    with pytest.raises(SerializationError, match=r"S3Store\(bucket='no-such-bucket-here'.*bucket does not exist"):
        missing.put(ref_of(b"x"), b"x")
    closed = S3Store(BUCKET, endpoint_url=f"http://127.0.0.1:{_free_port()}", connect_timeout_s=1)
    with pytest.raises(SerializationError, match="is the server reachable") as raised:
        closed.get(ref_of(b"x"))
    assert "testing" not in str(raised.value)


def test_a_store_from_a_url() -> None:
    from pulsarflow.payload_s3 import store_from_url

    store = store_from_url("s3://bucket/some/prefix?endpoint_url=http://127.0.0.1:9000&region=eu-west-1")
    assert (store.bucket, store.prefix, store.endpoint_url) == ("bucket", "some/prefix/", "http://127.0.0.1:9000")
    assert store_from_url("s3://bucket").prefix == ""
    for bad in ("s3:///prefix", "folder:/x", "s3://b/p?secret=1"):
        with pytest.raises(DefinitionError):
            store_from_url(bad)


def test_a_functions_userconfig_names_an_s3_store(endpoint: str, store: Any) -> None:
    """``payload_store: s3://...`` in a function's userConfig: large payloads go to the bucket and come back."""
    from pulsarflow.payloads import chain_from_config

    chain = chain_from_config({"payload_codecs": "claim", "payload_claim_bytes": 1024,
                               "payload_store": f"s3://{BUCKET}/it/?endpoint_url={endpoint}"})
    def keys() -> set[str]:
        listed = store.client.list_objects_v2(Bucket=BUCKET, Prefix="it/").get("Contents", [])
        return {str(o["Key"]) for o in listed}

    before, big = keys(), os.urandom(20_000).hex()
    encoded = chain.encode([big])
    assert len(encoded) < 1024, "the payload travelled whole instead of as a claim check"
    assert len(keys() - before) == 1, "the payload was not put in the bucket"
    assert chain.decode(encoded, [str]) == [big]
