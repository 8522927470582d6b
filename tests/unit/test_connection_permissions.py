"""What each role is granted (pulsarflow.deploy.permissions.plan): the least each part needs."""

from __future__ import annotations

from pulsarflow.deploy.permissions import Roles, grant_permissions, plan
from pulsarflow.topics import Topics

TOPICS = Topics(app="shop")


def test_a_client_produces_to_the_engines_and_consumes_only_its_own_replies() -> None:
    grants = plan(TOPICS, Roles(clients={"web": "web-1"}))
    assert grants == {TOPICS.workflow_engine: {"web": {"produce"}}, TOPICS.tag_engine: {"web": {"produce"}},
                      TOPICS.client("web-1"): {"web": {"consume"}}}


def test_an_executor_consumes_its_services_and_cancellations_and_answers_the_workflow_engine() -> None:
    grants = plan(TOPICS, Roles(executors={"pay": ["payments"]}))
    assert {t for t, roles in grants.items() if "consume" in roles["pay"]} == {
        TOPICS.executor("payments"), TOPICS.cancellations}
    assert {t for t, roles in grants.items() if "produce" in roles["pay"]} == {
        TOPICS.workflow_engine, TOPICS.dead_letters, TOPICS.events}
    assert TOPICS.executor("shipping") not in grants and TOPICS.tag_engine not in grants


class RecordingAdmin:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def grant_namespace(self, tenant: str, namespace: str, role: str, actions: list[str]) -> None:
        self.calls.append(("namespace", f"{tenant}/{namespace}", role, ",".join(actions)))

    def create_topic(self, topic: str) -> None:
        self.calls.append(("create", topic))

    def grant_topic(self, topic: str, role: str, actions: list[str]) -> None:
        self.calls.append(("grant", topic, role, ",".join(actions)))


def test_engines_get_the_namespace_and_every_granted_topic_is_created_first() -> None:
    admin = RecordingAdmin()
    lines = grant_permissions(admin, TOPICS, Roles(clients={"web": "w"}, engines=["engines"], readers=["ops"]))
    assert admin.calls[0] == ("namespace", "public/default", "engines", "consume,produce")
    for position, call in enumerate(admin.calls):
        if call[0] == "grant":
            assert ("create", call[1]) in admin.calls[:position], call
    assert f"{TOPICS.events}: ops may consume" in lines
