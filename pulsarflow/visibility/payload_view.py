"""Payloads shown by the CLI and the dashboard: decoded with the app's codecs when given, described when not.

The settings are those the Functions read (``payload_codecs``, the secret ``payload_keys``,
``payload_store``; see :func:`pulsarflow.payloads.chain_from_config`), given to the
visibility commands as flags or environment variables::

    --payload-codecs zlib,aesgcm,claim     PULSARFLOW_PAYLOAD_CODECS
    --payload-keys-file keys.json          PULSARFLOW_PAYLOAD_KEYS_FILE, or the JSON itself in
                                           PULSARFLOW_PAYLOAD_KEYS ({"current": "k1", "keys": {"k1": "<base64>"}})
    --payload-store folder:/shared|redis|s3://bucket/prefix/?endpoint_url=...
                                           PULSARFLOW_PAYLOAD_STORE (redis: PULSARFLOW_REDIS_URL)

Without them, compressed payloads are still shown (zlib needs no key); an encrypted one is
shown as ``{"undecoded": "encrypted with key 'k1'"}`` and one kept in a store as a
reference, never as raw bytes. A payload that does not decode (a wrong key, a store that
does not answer) is shown with the reason in the same form: the page or command goes on.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pulsarflow.errors import DefinitionError
from pulsarflow.payloads import MARKER, ClaimCheck, CodecChain, PayloadCodec, ZlibCodec, chain_from_config

UNDECODED = "undecoded"
CODECS_ENV, KEYS_ENV, KEYS_FILE_ENV = "PULSARFLOW_PAYLOAD_CODECS", "PULSARFLOW_PAYLOAD_KEYS", \
    "PULSARFLOW_PAYLOAD_KEYS_FILE"
STORE_ENV, REDIS_ENV = "PULSARFLOW_PAYLOAD_STORE", "PULSARFLOW_REDIS_URL"


class PayloadView:
    """Bytes of a payload -> what to display (a JSON value, or ``{"undecoded": why}``)."""

    def __init__(self, codecs: Sequence[PayloadCodec] = ()) -> None:
        self.codecs: dict[str, PayloadCodec] = {"zlib": ZlibCodec()}
        self.codecs.update({c.name: c for c in codecs})

    def __call__(self, data: bytes | None) -> Any:
        if data is None:
            return None
        data = bytes(data)
        if not data.startswith(MARKER):
            return plain(data)
        size = data[len(MARKER)] if len(data) > len(MARKER) else 0
        start = len(MARKER) + 1
        names = data[start:start + size].decode("ascii", errors="replace").split(",")
        body = data[start + size:]
        for name in reversed(names):
            codec = self.codecs.get(name)
            if codec is None:
                return {UNDECODED: _missing(name, body)}
            try:
                body = codec.decode(body)
            except Exception as exc:  # a wrong key, a damaged payload, a store that does not answer
                return {UNDECODED: str(exc) or type(exc).__name__}
        return plain(body)


def plain(data: bytes) -> Any:
    """The converter's bytes for display: the JSON value (one-element lists unwrapped), else base64."""
    try:
        value = json.loads(data)
    except ValueError:
        return {"base64": base64.b64encode(data).decode()}
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _missing(name: str, body: bytes) -> str:
    if name == "aesgcm":
        key_id = body[1:1 + body[0]].decode(errors="replace") if body else "?"
        return f"encrypted with key {key_id!r} (give the keys: --payload-keys-file or ${KEYS_ENV})"
    if name == "claim":
        ref = body[:64].decode("ascii", errors="replace")
        return f"kept in a payload store as {ref} (give --payload-store to read it)"
    return f"encoded with codec {name!r} (give --payload-codecs)"


def view_from_settings(codecs: str | None, keys: str | None = None, store: str | None = None,
                       redis_url: str | None = None) -> PayloadView:
    """The view for the Functions' settings: ``codecs`` as ``payload_codecs``, ``keys`` the ``payload_keys`` JSON."""
    names = [n.strip() for n in (codecs or "").split(",") if n.strip()]
    if not names:
        return PayloadView()
    if "aesgcm" in names and not keys:
        raise DefinitionError(f"--payload-codecs names aesgcm: give the keys with --payload-keys-file or ${KEYS_ENV} "
                              '(JSON {"current": "k1", "keys": {"k1": "<base64 of 32 bytes>"}})')
    s3 = store is not None and store.startswith("s3://")
    config = {"payload_codecs": ",".join(n for n in names if not (s3 and n == "claim")),
              "payload_store": store or ""}
    secrets = {"payload_keys": keys, "redis_url": redis_url}
    chain = chain_from_config(config, secret=secrets.get)
    made: list[PayloadCodec] = list(chain.codecs) if isinstance(chain, CodecChain) else []
    if s3 and "claim" in names:
        from pulsarflow.payload_s3 import store_from_url

        made.append(ClaimCheck(store_from_url(str(store))))
    return PayloadView(made)


def add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("Payload codecs (the payload_codecs, payload_keys, payload_store the "
                                      "Functions read: shows encoded payloads decoded)")
    group.add_argument("--payload-codecs", metavar="SPEC", help=f"e.g. zlib,aesgcm,claim (${CODECS_ENV})")
    group.add_argument("--payload-keys-file", metavar="PATH", help='the payload_keys JSON {"current": ..., '
                       f'"keys": {{id: base64}}}} (${KEYS_FILE_ENV}, or the JSON in ${KEYS_ENV})')
    group.add_argument("--payload-store", metavar="WHERE", help="folder:/path, redis or s3://bucket/prefix/"
                       f"?endpoint_url=... (${STORE_ENV}; redis reads ${REDIS_ENV})")


def named(args: Any, env: Mapping[str, str]) -> bool:
    """Whether the flags or the environment name payload codecs (else the default view stays)."""
    return bool(getattr(args, "payload_codecs", None) or env.get(CODECS_ENV))


def from_args(args: Any, env: Mapping[str, str]) -> PayloadView:
    """The view the flags of :func:`add_arguments` (over the environment) describe."""
    codecs = getattr(args, "payload_codecs", None) or env.get(CODECS_ENV)
    keys_file = getattr(args, "payload_keys_file", None) or env.get(KEYS_FILE_ENV)
    keys = env.get(KEYS_ENV)
    if keys_file:
        try:
            keys = Path(keys_file).read_text()
        except OSError as exc:
            raise DefinitionError(f"cannot read the payload keys file {keys_file}: {exc.strerror}") from None
    store = getattr(args, "payload_store", None) or env.get(STORE_ENV)
    return view_from_settings(codecs, keys, store, env.get(REDIS_ENV))
