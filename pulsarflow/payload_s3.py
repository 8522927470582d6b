"""A claim-check store on S3 or an S3-compatible server (MinIO, Ceph RGW, moto): ``pulsarflow[s3]``.

The same small protocol as :class:`pulsarflow.payloads.FolderStore` (``put(ref, data)``,
``get(ref)``, None for a payload it does not hold), so it goes into a
:class:`~pulsarflow.payloads.ClaimCheck`::

    from pulsarflow.payload_s3 import S3Store
    from pulsarflow.payloads import AesGcmCodec, ClaimCheck, CodecChain

    store = S3Store("shop-payloads", prefix="large/", endpoint_url="http://127.0.0.1:9000")
    converter = CodecChain([AesGcmCodec(keys, "k1"), ClaimCheck(store)])

Objects are named ``prefix + reference`` (the payload's SHA-256 in hex, checked before any
request, so a forged reference never names another object). A payload already stored is
not sent again. Credentials come from boto3's usual places (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, an instance role) and are never printed. Put the
``ClaimCheck`` after the encryption in a chain so the bucket holds ciphertext; expire old
objects with a lifecycle rule once no running workflow needs them.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pulsarflow.errors import DefinitionError, SerializationError
from pulsarflow.payloads import check_reference
from pulsarflow.redaction import redact

MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Store:
    """Large payloads as objects of ``bucket`` under ``prefix``; ``client`` a boto3 S3 client (made if not given)."""

    def __init__(self, bucket: str, prefix: str = "pulsarflow/payloads/", client: Any = None,
                 endpoint_url: str | None = None, region_name: str | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 60.0) -> None:
        if not bucket:
            raise DefinitionError("S3Store needs a bucket name")
        self.bucket, self.prefix, self.endpoint_url = bucket, prefix, endpoint_url
        self.client = client if client is not None else _client(endpoint_url, region_name, connect_timeout_s,
                                                                read_timeout_s)

    def put(self, ref: str, data: bytes) -> None:
        key = self.prefix + check_reference(ref)
        if self._head(key):
            return  # content-addressed: the same reference is the same bytes
        self._call("put", key, lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=data))

    def get(self, ref: str) -> bytes | None:
        key = self.prefix + check_reference(ref)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in MISSING:
                return None
            raise self._error("get", key, exc) from exc
        return bytes(response["Body"].read())

    def _head(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in MISSING:
                return False
            raise self._error("look up", key, exc) from exc
        return True

    def _call(self, what: str, key: str, call: Any) -> Any:
        try:
            return call()
        except Exception as exc:
            raise self._error(what, key, exc) from exc

    def _error(self, what: str, key: str, exc: Exception) -> SerializationError:
        code = _code(exc)
        hint = {"NoSuchBucket": "the bucket does not exist: create it (or fix the name)",
                "AccessDenied": "the credentials may not do this: give them s3:GetObject and s3:PutObject "
                                "on the bucket",
                "InvalidAccessKeyId": "the access key is not known to this server: fix AWS_ACCESS_KEY_ID",
                "SignatureDoesNotMatch": "the secret key does not match the access key: fix AWS_SECRET_ACCESS_KEY",
                }.get(code or "", "is the server reachable, and are the endpoint and credentials right?")
        return SerializationError(f"{self!r} could not {what} {key}: {redact(str(exc))[:300]} ({hint})")

    def __repr__(self) -> str:
        where = f", endpoint_url={redact(self.endpoint_url)!r}" if self.endpoint_url else ""
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r}{where})"


def store_from_url(url: str) -> S3Store:
    """``s3://bucket/prefix/?endpoint_url=http://127.0.0.1:9000&region=eu-west-1`` as an S3Store."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise DefinitionError(f"an S3 payload store is s3://bucket/prefix/ (optionally ?endpoint_url=...&region=...), "
                              f"got {redact(url)!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"endpoint_url", "region"})
    if unknown:
        raise DefinitionError(f"unknown option(s) {unknown} in the S3 payload store URL (known: endpoint_url, region)")
    prefix = parts.path.lstrip("/")
    return S3Store(parts.netloc, prefix=prefix if not prefix or prefix.endswith("/") else prefix + "/",
                   endpoint_url=query.get("endpoint_url"), region_name=query.get("region"))


def _client(endpoint_url: str | None, region_name: str | None, connect_timeout_s: float,
            read_timeout_s: float) -> Any:
    try:
        boto3 = importlib.import_module("boto3")
        config = importlib.import_module("botocore.config")
    except ImportError as exc:
        raise DefinitionError("S3Store needs boto3: pip install 'pulsarflow[s3]'") from exc
    options = config.Config(connect_timeout=connect_timeout_s, read_timeout=read_timeout_s,
                            retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region_name or "us-east-1", config=options)


def _code(exc: Exception) -> str | None:
    """The S3 error code of a botocore ClientError (``NoSuchKey``, ``404``...), None for other errors."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
