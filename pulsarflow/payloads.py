"""Payload codecs: bytes-to-bytes steps applied to every user payload after conversion.

Arguments, results, signal data and update arguments are converted to bytes by the
payload converter (JSON by default); a :class:`CodecChain` then passes those bytes through
its codecs in order (compression, encryption, a claim check for large payloads) and undoes
them in reverse on the way back. It is a PayloadConverter itself, so it goes wherever a
converter goes (``EmbeddedEnvironment(converter=)``, ``Client(converter=)``,
``pulsarflow.pulsar.worker.connect(converter=)``). Every process that reads a workflow's payloads
(engines, executors, clients) needs the same chain, or at least the codecs it used.

An encoded payload records the codecs that made it::

    FF 'P' 'F' 'C' | len | codec names, comma-separated (ASCII) | body

so a chain reads payloads written before it was configured (no marker: the converter's
own bytes) and payloads a codec skipped (``ZlibCodec`` leaves small ones alone). An empty
payload stays empty (it means "no value"). The marker cannot begin JSON; give a converter
whose bytes may begin with 0xFF no chain.

- :class:`ZlibCodec`: compresses payloads of at least ``min_size`` bytes.
- :class:`AesGcmCodec`: AES-256-GCM with a key id (``pulsarflow[crypto]``): it encrypts with
  ``current`` and decrypts with whichever key the payload names, so keys rotate by adding
  the new one and making it current; the old ones stay until no payload needs them.
- :class:`ClaimCheck`: payloads past ``threshold`` bytes are kept in a :class:`PayloadStore`
  (a folder, Redis) and travel as a reference, so results larger than the broker's message
  limit work; the reference is the content's SHA-256, so a retry stores nothing twice.

Decoding a payload whose codec or key this process lacks fails with a SerializationError
that names it; the message is not lost (the runtime keeps it as an error of that step).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pulsarflow.converter import CODEC_MARKER, JsonConverter, PayloadConverter
from pulsarflow.errors import DefinitionError, SerializationError
from pulsarflow.interpreter import sandbox

MARKER = CODEC_MARKER
REFERENCE = re.compile(r"[0-9a-f]{64}")  # a ClaimCheck reference: the SHA-256 of the payload, in hex


def check_reference(ref: object) -> str:
    """``ref`` if it is a claim-check reference (64 hex digits); SerializationError otherwise.

    A reference comes from a message, which anyone who can publish may have written: stores
    look up nothing else, so a reference can never name a file or key outside the store.
    """
    if not isinstance(ref, str) or not REFERENCE.fullmatch(ref):
        shown = ref[:80] if isinstance(ref, (str, bytes)) else ref
        raise SerializationError(f"claim-check reference {shown!r} is not one: a reference is the SHA-256 of "
                                 "the payload in 64 lowercase hex digits (the payload was damaged or forged; "
                                 "nothing was read)")
    return ref


class PayloadCodec(Protocol):
    """One step of a chain: ``decode(encode(b)) == b``; ``encode`` may return None to leave ``b`` as it is."""

    name: str

    def encode(self, data: bytes) -> bytes | None: ...

    def decode(self, data: bytes) -> bytes: ...


class CodecChain:
    """A PayloadConverter: ``converter``'s bytes, then each codec in order."""

    def __init__(self, codecs: Sequence[PayloadCodec], converter: PayloadConverter | None = None) -> None:
        self.converter = converter or JsonConverter()
        self.codecs = list(codecs)
        names = [c.name for c in self.codecs]
        bad = [n for n in names if not n or not n.isascii() or "," in n or len(n) > 40]
        if bad or len(set(names)) != len(names) or len(",".join(names)) > 255:
            raise DefinitionError(f"payload codec names must be distinct short ASCII words without commas (at "
                                  f"most 40 characters each, 255 in all), got {names}")
        self._by_name = {c.name: c for c in self.codecs}

    def encode(self, values: Sequence[Any]) -> bytes:
        data = self.converter.encode(values)
        applied: list[str] = []
        with sandbox.outside_workflow():  # codecs may do I/O and draw nonces, even under workflow code
            for codec in self.codecs:
                out = codec.encode(data)
                if out is not None:
                    data, applied = out, [*applied, codec.name]
        if not applied:
            return data
        names = ",".join(applied).encode("ascii")
        return MARKER + bytes([len(names)]) + names + data

    def decode(self, data: bytes, hints: Sequence[Any] | None = None) -> list[Any]:
        return self.converter.decode(self.unwrap(data), hints)

    def unwrap(self, data: bytes) -> bytes:
        """The converter's bytes of a payload (every codec undone); bytes without the marker as they are."""
        data = bytes(data)
        if not data.startswith(MARKER):
            return data
        size = data[len(MARKER)] if len(data) > len(MARKER) else 0
        start = len(MARKER) + 1
        names = data[start:start + size].decode("ascii", errors="replace").split(",")
        body = data[start + size:]
        with sandbox.outside_workflow():
            for name in reversed(names):
                codec = self._by_name.get(name)
                if codec is None:
                    raise SerializationError(f"payload encoded with codec {name!r}, which this process's CodecChain "
                                             f"({', '.join(self._by_name) or 'no codec'}) does not have: give it the "
                                             "same codecs as the process that wrote it")
                body = codec.decode(body)
        return body


class ZlibCodec:
    """Compresses payloads of at least ``min_size`` bytes; refuses to inflate one past ``max_size``."""

    name = "zlib"

    def __init__(self, min_size: int = 1024, level: int = 6, max_size: int = 1024 ** 3) -> None:
        self.min_size, self.level, self.max_size = min_size, level, max_size

    def encode(self, data: bytes) -> bytes | None:
        if len(data) < self.min_size:
            return None
        packed = zlib.compress(data, self.level)
        return packed if len(packed) < len(data) else None

    def decode(self, data: bytes) -> bytes:
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, self.max_size + 1)
        except zlib.error as exc:
            raise SerializationError(f"payload marked zlib does not decompress: {exc}") from exc
        if len(out) > self.max_size or inflater.unconsumed_tail:
            raise SerializationError(f"payload marked zlib inflates past {self.max_size:,} bytes (ZlibCodec "
                                     "max_size): refused, as a forged one would exhaust memory")
        if not inflater.eof:
            raise SerializationError("payload marked zlib is truncated (its compressed stream does not end)")
        return out


class AesGcmCodec:
    """AES-256-GCM; ``keys`` maps key ids to 32-byte keys, ``current`` names the one that encrypts."""

    name = "aesgcm"

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise DefinitionError("AesGcmCodec needs the cryptography package: pip install 'pulsarflow[crypto]'") \
                from exc
        if current not in keys:
            raise DefinitionError(f"current key {current!r} is not among the keys {sorted(keys)}")
        for key_id, key in keys.items():
            if len(key) != 32 or not key_id or len(key_id.encode()) > 255:
                raise DefinitionError(f"key {key_id!r}: AES-256 keys are 32 bytes (got {len(key)}) under an id of "
                                      "1 to 255 bytes; make one with os.urandom(32)")
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    def encode(self, data: bytes) -> bytes:
        key_id = self.current.encode()
        nonce = os.urandom(12)
        return bytes([len(key_id)]) + key_id + nonce + self._aead[self.current].encrypt(nonce, data, key_id)

    def decode(self, data: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        size = data[0] if data else 0
        key_id = data[1:1 + size].decode(errors="replace")
        aead = self._aead.get(key_id)
        if aead is None:
            raise SerializationError(f"payload encrypted with key {key_id!r}, which this process does not have "
                                     f"(it has {sorted(self._aead)}): keep retired keys until no payload needs them")
        nonce, sealed = data[1 + size:13 + size], data[13 + size:]
        if len(nonce) != 12 or len(sealed) < 16:
            raise SerializationError(f"payload encrypted with key {key_id!r} is truncated ({len(data)} bytes: too "
                                     "short for its nonce and tag)")
        try:
            return aead.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag as exc:
            raise SerializationError(f"payload encrypted with key {key_id!r} does not decrypt with this process's "
                                     "key of that id (a different key under the same id, or damaged bytes)") from exc


class PayloadStore(Protocol):
    """Where a ClaimCheck keeps large payloads, by reference."""

    def put(self, ref: str, data: bytes) -> None: ...

    def get(self, ref: str) -> bytes | None: ...


class FolderStore:
    """Large payloads as files of one folder (shared by every process, e.g. a network mount)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def put(self, ref: str, data: bytes) -> None:
        path = self.folder / check_reference(ref)
        if not path.exists():
            part = self.folder / f"{ref}.{os.getpid()}.{uuid.uuid4().hex}.part"  # one per writer, threads too
            try:
                part.write_bytes(data)
                part.replace(path)  # atomic: a reader never sees half a payload
            finally:
                part.unlink(missing_ok=True)

    def get(self, ref: str) -> bytes | None:
        path = self.folder / check_reference(ref)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            if not self.folder.is_dir():
                raise SerializationError(f"payload store folder {str(self.folder)!r} does not exist (any more): "
                                         "mount or create it where every process finds it") from None
            return None

    def __repr__(self) -> str:
        return f"FolderStore({str(self.folder)!r})"


class RedisPayloadStore:
    """Large payloads in Redis under ``prefix`` + reference (``pulsarflow[redis]``), kept ``ttl_s`` if given."""

    def __init__(self, url: str, prefix: str = "pulsarflow:payload:", ttl_s: int | None = None) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix, self.ttl_s = prefix, ttl_s

    def put(self, ref: str, data: bytes) -> None:
        self.client.set(self.prefix + check_reference(ref), data, ex=self.ttl_s, nx=True)

    def get(self, ref: str) -> bytes | None:
        found: Any = self.client.get(self.prefix + check_reference(ref))
        return bytes(found) if found is not None else None

    def __repr__(self) -> str:
        return f"RedisPayloadStore(prefix={self.prefix!r})"


class ClaimCheck:
    """Payloads of ``threshold`` bytes or more go to ``store``; the message carries their SHA-256 instead.

    Put it last in a chain (after ``AesGcmCodec``): a codec after it sees only the reference,
    so a ClaimCheck before the encryption keeps payloads in the store in clear.
    """

    name = "claim"

    def __init__(self, store: PayloadStore, threshold: int = 256 * 1024) -> None:
        if threshold < 64:
            raise DefinitionError(f"ClaimCheck threshold must be at least 64 bytes, got {threshold}")
        self.store, self.threshold = store, threshold

    def encode(self, data: bytes) -> bytes | None:
        if len(data) < self.threshold:
            return None
        ref = hashlib.sha256(data).hexdigest()
        self.store.put(ref, data)
        return ref.encode()

    def decode(self, data: bytes) -> bytes:
        ref = check_reference(data.decode("ascii", errors="replace"))
        found = self.store.get(ref)
        if found is None:
            raise SerializationError(f"large payload {ref} is not in {self.store!r}: every process needs the same "
                                     "payload store (and it must keep payloads as long as their workflows run)")
        if hashlib.sha256(found).hexdigest() != ref:
            raise SerializationError(f"large payload {ref} in {self.store!r} is damaged (its SHA-256 differs)")
        return found


def chain_from_config(config: Mapping[str, Any], secret: Any = None) -> PayloadConverter:
    """The converter a function's userConfig asks for (JSON alone when it names no codec).

    ``payload_codecs: zlib,aesgcm,claim`` (in that order of application); ``aesgcm`` reads
    the function secret ``payload_keys`` (JSON ``{"current": "k1", "keys": {"k1": "<base64
    of 32 bytes>"}}``); ``claim`` keeps payloads of ``payload_claim_bytes`` (default 256 KiB)
    or more in ``payload_store``: ``folder:/shared/path``, ``redis`` (the app's Redis URL,
    the function secret ``redis_url``) or ``s3://bucket/prefix/?endpoint_url=...&region=...``
    (pulsarflow.payload_s3; credentials as boto3 finds them). ``secret(name)`` reads a function secret.
    """
    import base64
    import json

    names = [n.strip() for n in str(config.get("payload_codecs") or "").split(",") if n.strip()]
    if not names:
        return JsonConverter()
    read = secret or (lambda _name: None)
    codecs: list[PayloadCodec] = []
    for name in names:
        if name == "zlib":
            codecs.append(ZlibCodec())
        elif name == "aesgcm":
            raw = read("payload_keys")
            if not raw:
                raise DefinitionError("payload_codecs has aesgcm but the function has no secret 'payload_keys' "
                                      '(JSON {"current": "k1", "keys": {"k1": "<base64 of 32 bytes>"}})')
            try:
                spec = json.loads(raw)
                keys = {k: base64.b64decode(v) for k, v in spec["keys"].items()}
                current = spec["current"]
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise DefinitionError(f"secret 'payload_keys' is not {{'current': id, 'keys': {{id: base64}}}}: "
                                      f"{type(exc).__name__}") from None
            codecs.append(AesGcmCodec(keys, current))
        elif name == "claim":
            where = str(config.get("payload_store") or "")
            store: PayloadStore
            if where.startswith("folder:"):
                store = FolderStore(where[len("folder:"):])
            elif where == "redis":
                url = read("redis_url") or config.get("redis_url")
                if not url:
                    raise DefinitionError("payload_store: redis needs the app's Redis URL (the secret 'redis_url')")
                store = RedisPayloadStore(str(url))
            elif where.startswith("s3://"):
                from pulsarflow.payload_s3 import store_from_url  # boto3: the s3 extra

                store = store_from_url(where)
            else:
                raise DefinitionError(f"payload_codecs has claim: set payload_store to folder:/path, redis or "
                                      f"s3://bucket/prefix/, got {where!r}")
            codecs.append(ClaimCheck(store, int(config.get("payload_claim_bytes", 256 * 1024))))
        else:
            raise DefinitionError(f"unknown payload codec {name!r} in payload_codecs (known: zlib, aesgcm, claim)")
    return CodecChain(codecs)
