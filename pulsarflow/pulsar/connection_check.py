"""``check(config)``: connect with a short timeout and say in one line what is wrong, or what works.

In order, each step only once the one before passed: the broker's port answers; its TLS
certificate is trusted (a TLS handshake of our own, so the reason is the real one: unknown
CA, wrong host name); the token has not expired; the admin API accepts the credentials;
the broker accepts them (a partition lookup of each topic given, which also needs the
role's permission on the topic). The first failure raises
:class:`~pulsarflow.pulsar.connection.PulsarAccessError`; the whole check takes seconds, never hangs.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urlparse

from pulsarflow.pulsar.connection import ConnectionConfig, PulsarAccessError
from pulsarflow.pulsar.connection_errors import explain_client, explain_http, role_of, tls_failure, token_expiry

PROBE_TOPIC = "persistent://public/default/__pulsarflow_connection_check"


def check(config: ConnectionConfig, topics: Iterable[str] = (), timeout_s: float = 5.0,
          admin: bool = True) -> list[str]:
    """What was verified, one line each; raises PulsarAccessError at the first failure.

    Without ``topics``, a role without permission on the probe topic still passes (it
    authenticated); with them, each must be usable by the role.
    """
    service_url = config.require_service_url()
    done = [_reach(config, service_url, timeout_s)]
    expired = token_expiry(config.auth)
    if expired:
        raise PulsarAccessError(f"the broker at {service_url} will refuse the credentials: {expired}")
    if admin and config.admin_url:
        done.append(_admin(config, timeout_s))
    done.extend(_broker(config, list(topics), timeout_s))
    return done


def _reach(config: ConnectionConfig, service_url: str, timeout_s: float) -> str:
    url = urlparse(service_url)
    host, port = url.hostname or "127.0.0.1", url.port or (6651 if url.scheme == "pulsar+ssl" else 6650)
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        raise PulsarAccessError(f"cannot reach the broker at {service_url} ({exc.strerror or exc}): check "
                                f"{config.where('brokerServiceUrl')}") from exc
    with sock:
        speaks_tls = _handshake(config, sock, host, timeout_s, url.scheme == "pulsar+ssl")
    if url.scheme == "pulsar" and speaks_tls:
        raise PulsarAccessError(f"the broker port {host}:{port} speaks TLS but brokerServiceUrl is "
                                f"{service_url}: use pulsar+ssl:// ({config.where('brokerServiceUrl')})")
    return f"broker {service_url} reached" + (" over trusted TLS" if speaks_tls else "")


def _handshake(config: ConnectionConfig, sock: socket.socket, host: str, timeout_s: float, required: bool) -> bool:
    """Whether the port speaks TLS; for a pulsar+ssl:// URL, a failed verification raises."""
    context = ssl.create_default_context(cafile=config.tls_trust_certs)
    context.check_hostname = config.tls_hostname_verification and not config.tls_allow_insecure
    if config.tls_allow_insecure or not required:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    sock.settimeout(timeout_s if required else min(timeout_s, 1.0))
    try:
        with context.wrap_socket(sock, server_hostname=host):
            return True
    except ssl.SSLCertVerificationError as exc:
        raise PulsarAccessError(tls_failure(config, f"the broker at {config.service_url}",
                                            exc.verify_message or str(exc))) from exc
    except (ssl.SSLError, OSError) as exc:
        if required:
            raise PulsarAccessError(f"no TLS handshake with the broker at {config.service_url} ({exc}): is the "
                                    f"port a TLS one? check {config.where('brokerServiceUrl')}") from exc
        return False


def _admin(config: ConnectionConfig, timeout_s: float) -> str:
    import requests

    url = f"{config.require_admin_url()}/admin/v2/clusters"
    session = config.http_session()
    try:
        response = session.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        raise (explain_http(config, "GET", url, exc=exc) or PulsarAccessError(f"GET {url} failed: {exc}")) from exc
    finally:
        session.close()
    error = explain_http(config, "GET", url, response)
    if error is not None:
        raise error
    if response.status_code != 200:
        raise PulsarAccessError(f"GET {url} answered {response.status_code}: check "
                                f"{config.where('webServiceUrl')}")
    return f"admin API {config.admin_url} accepted the credentials"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _broker(config: ConnectionConfig, topics: list[str], timeout_s: float) -> list[str]:
    logger = logging.getLogger("pulsarflow.pulsar.connection.check")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    collect = _Collect()
    logger.addHandler(collect)
    client = config.client(logger=logger, operation_timeout_seconds=max(1, int(timeout_s)),
                           connection_timeout_ms=int(timeout_s * 1000))
    role = role_of(config.auth)
    done = []
    try:
        for topic in topics or [PROBE_TOPIC]:
            try:
                client.get_topic_partitions(topic)
            except Exception as exc:
                if not topics and type(exc).__name__ == "AuthorizationError":
                    break  # authenticated; the probe topic is simply not the role's
                error = explain_client(config, exc, collect.lines, what=f"use {topic}")
                raise (error or PulsarAccessError(f"the broker at {config.service_url}: {exc}")) from exc
            if topics:
                done.append(f"topic {topic} usable")
        done.insert(0, f"broker accepted the credentials{f' of role {role!r}' if role else ''}")
    finally:
        client.close()
        logger.removeHandler(collect)
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m pulsarflow.pulsar.connection_check [--client-conf PATH] [--topic T]``: what works, what to fix."""
    import argparse
    import sys

    from pulsarflow.errors import PulsarflowError
    from pulsarflow.pulsar.connection import add_arguments, from_args

    parser = argparse.ArgumentParser(prog="python -m pulsarflow.pulsar.connection_check", description=main.__doc__)
    add_arguments(parser)
    parser.add_argument("--topic", action="append", default=[], help="a topic the role must be able to use")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        print("\n".join(check(from_args(args), args.topic, args.timeout)))
    except PulsarflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
