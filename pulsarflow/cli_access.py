"""The access commands of ``pulsarflow``: test the connection settings, grant an app's roles their topics.

    pulsarflow check [--client-conf PATH] [--topic T]...     what works, or the one setting to fix
    pulsarflow deploy permissions --client ROLE=CLIENT_ID --executor ROLE=svc1,svc2 --engine ROLE --reader ROLE

Both read the connection of :mod:`pulsarflow.pulsar.connection` (client.conf, PULSAR_* variables,
flags). ``check`` runs :func:`pulsarflow.pulsar.connection_check.check`; ``deploy permissions``
applies :func:`pulsarflow.deploy.permissions.grant_permissions` to the manifest's topics
(see docs/security.md for who gets what).
"""

from __future__ import annotations

import argparse
from typing import Any

from pulsarflow.errors import DefinitionError
from pulsarflow.pulsar import connection


def register_check(sub: Any) -> None:
    """Add ``check`` to the ``pulsarflow`` parser's subcommands."""
    check = sub.add_parser("check", help="test the connection settings: reach the broker and the admin API "
                           "with the credentials, or say in one line which setting to fix",
                           description="Connect to Pulsar as the other commands would, with a short timeout; "
                           "exit 1 naming the setting to fix at the first failure.")
    connection.add_arguments(check)
    check.add_argument("--topic", action="append", default=[], metavar="TOPIC",
                       help="a topic the role must be able to use (repeatable)")
    check.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                       help="give up on each step after this long (default: %(default)s)")
    check.add_argument("--no-admin", action="store_true", help="do not try the admin API (a role with no "
                       "admin rights, or no webServiceUrl)")


def check_main(args: argparse.Namespace) -> int:
    from pulsarflow.pulsar.connection_check import check

    print("\n".join(check(connection.from_args(args), args.topic, args.timeout, admin=not args.no_admin)))
    return 0


def role_options(parser: argparse.ArgumentParser) -> None:
    """The roles of ``deploy permissions``, each repeatable."""
    parser.add_argument("--client", action="append", default=[], type=_client_role, metavar="ROLE=CLIENT_ID",
                        help="permissions: a client role and the client id it uses (repeatable)")
    parser.add_argument("--executor", action="append", default=[], type=_executor_role,
                        metavar="ROLE=SERVICE,SERVICE", help="permissions: an executor role and the task services "
                        "it runs (repeatable)")
    parser.add_argument("--engine", action="append", default=[], metavar="ROLE",
                        help="permissions: the engines' role, given the whole namespace (repeatable)")
    parser.add_argument("--reader", action="append", default=[], metavar="ROLE",
                        help="permissions: a role reading the events and dead letters (repeatable)")


def permissions_main(args: argparse.Namespace, admin: Any = None) -> int:
    """Grant each role given its topics of the manifest's app; ``admin`` replaces the PulsarAdmin (tests)."""
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy.permissions import Roles, grant_permissions

    roles = Roles(clients=dict(args.client), executors=dict(args.executor), engines=args.engine,
                  readers=args.reader)
    if not (roles.clients or roles.executors or roles.engines or roles.readers):
        raise DefinitionError("deploy permissions needs at least one role: --client ROLE=CLIENT_ID, "
                              "--executor ROLE=SERVICE,..., --engine ROLE or --reader ROLE")
    manifest = mf.load(args.manifest)
    if admin is None:
        from pulsarflow.deploy.admin import PulsarAdmin

        admin = PulsarAdmin(connection.from_args(args))
    print("\n".join(grant_permissions(admin, manifest.topics, roles)))
    return 0


def _client_role(text: str) -> tuple[str, str]:
    role, _, client_id = text.partition("=")
    if not role or not client_id:
        raise argparse.ArgumentTypeError(f"expected ROLE=CLIENT_ID, got {text!r}")
    return role, client_id


def _executor_role(text: str) -> tuple[str, list[str]]:
    role, _, services = text.partition("=")
    names = [s.strip() for s in services.split(",") if s.strip()]
    if not role or not names:
        raise argparse.ArgumentTypeError(f"expected ROLE=SERVICE[,SERVICE...], got {text!r}")
    return role, names
