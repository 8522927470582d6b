"""Least privilege on a cluster with authorization on: which role may produce to or consume which topic.

One application's topics (:class:`~pulsarflow.topics.Topics`) and who uses them::

    topic                     clients        executors (service s)   engines        readers
    {app}-workflow-engine     produce        produce                 both           -
    {app}-tag-engine          produce        -                       both           -
    {app}-tasks-{s}           -              consume (its own s)     both           -
    {app}-cancellations       -              consume                 both           -
    {app}-client-{id}         consume (own)  -                       produce        -
    {app}-dead-letters        -              produce                 both           consume
    {app}-events              -              produce                 both           consume

A client role names the client id it uses (``Client(..., client_id=...)``): it consumes
only its own reply topic. Engines answer any client, whose topics are named by ids not
known in advance, so the engine role gets produce and consume on the whole namespace:
it is as trusted as the namespace. (Engines deployed as Pulsar Functions act with the
functions worker's credentials: see docs/security.md.) Readers are the dashboard's feed
and ``pulsarflow deadletters``.

:func:`plan` is pure (what to grant); :func:`grant_permissions` applies it through the
admin API: a topic-level grant per (topic, role), each replacing that role's previous
actions on the topic, so applying twice is the same as once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulsarflow.topics import Topics

PRODUCE, CONSUME = "produce", "consume"


@dataclass(frozen=True)
class Roles:
    """The roles of one application: client role -> its client id, executor role -> its services."""

    clients: Mapping[str, str] = field(default_factory=dict)
    executors: Mapping[str, Sequence[str]] = field(default_factory=dict)
    engines: Sequence[str] = ()
    readers: Sequence[str] = ()


def plan(topics: Topics, roles: Roles) -> dict[str, dict[str, set[str]]]:
    """Topic -> role -> actions, for the topic-level grants (engines are granted on the namespace)."""
    grants: dict[str, dict[str, set[str]]] = {}

    def grant(topic: str, role: str, *actions: str) -> None:
        grants.setdefault(topic, {}).setdefault(role, set()).update(actions)

    for role, client_id in roles.clients.items():
        grant(topics.workflow_engine, role, PRODUCE)
        grant(topics.tag_engine, role, PRODUCE)
        grant(topics.client(client_id), role, CONSUME)
    for role, services in roles.executors.items():
        for service in services:
            grant(topics.executor(service), role, CONSUME)
        grant(topics.cancellations, role, CONSUME)
        for topic in (topics.workflow_engine, topics.dead_letters, topics.events):
            grant(topic, role, PRODUCE)
    for role in roles.readers:
        grant(topics.events, role, CONSUME)
        grant(topics.dead_letters, role, CONSUME)
    return grants


def grant_permissions(admin: Any, topics: Topics, roles: Roles) -> list[str]:
    """Grant what :func:`plan` says through ``admin`` (a PulsarAdmin); one line per grant made."""
    done = []
    for role in roles.engines:
        admin.grant_namespace(topics.tenant, topics.namespace, role, [CONSUME, PRODUCE])
        done.append(f"namespace {topics.tenant}/{topics.namespace}: {role} may consume, produce")
    for topic, by_role in plan(topics, roles).items():
        admin.create_topic(topic)  # a grant needs the topic to exist
        for role, actions in sorted(by_role.items()):
            admin.grant_topic(topic, role, sorted(actions))
            done.append(f"{topic}: {role} may {', '.join(sorted(actions))}")
    return done
