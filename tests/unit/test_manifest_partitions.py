"""``partitions:`` in the manifest: defaults, refusals, and the plan the deploy tool makes from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy import tool
from pulsarflow.errors import DefinitionError
from tests.unit.test_deploy_parallelism import CONFIG, FakeAdmin


def engines(**workflow: Any) -> dict[str, Any]:
    return {"app": "shop", "functions": [{"engine": "workflow", **workflow},
                                         {"engine": "executor", "service": "default"}]}


class TopicsAdmin:
    """The partition side of PulsarAdmin over a dict: topic -> partitions (0 = non-partitioned)."""

    def __init__(self, topics: dict[str, int]) -> None:
        self.topics = dict(topics)
        self.calls: list[tuple[str, str, int]] = []

    def partitions(self, topic: str) -> int:
        return self.topics.get(topic, 0)

    def topic_exists(self, topic: str) -> bool:
        return topic in self.topics

    def create_partitioned_topic(self, topic: str, partitions: int) -> None:
        self.calls.append(("create", topic, partitions))

    def grow_partitioned_topic(self, topic: str, partitions: int) -> None:
        self.calls.append(("grow", topic, partitions))


def test_the_default_is_one_partition_a_non_partitioned_topic() -> None:
    manifest = mf.parse(engines())
    assert [f.partitions for f in manifest.functions] == [1, 1]
    assert tool.plan_partitions(TopicsAdmin({}), manifest) == []  # type: ignore[arg-type]  # auto-created as before


def test_partitions_map_to_the_input_topic_of_each_function() -> None:
    manifest = mf.parse(engines(partitions=4, parallelism=4))
    assert mf.partitioned_topics(manifest) == {manifest.topics.workflow_engine: 4,
                                               manifest.topics.executor("default"): 1}
    config = mf.function_config(manifest, manifest.functions[0], "x.zip")
    assert config["parallelism"] == 4 and config["retainKeyOrdering"] is True
    assert list(config["customSerdeInputs"]) == [manifest.topics.workflow_engine]


@pytest.mark.parametrize("bad", [0, -1, "2", 1.5, True])
def test_a_partition_count_that_is_not_a_whole_number_is_refused(bad: Any) -> None:
    with pytest.raises(DefinitionError, match=r"functions\[0\].partitions must be a whole number >= 1"):
        mf.parse(engines(partitions=bad, parallelism=8))


def test_fewer_instances_than_partitions_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"asks for 4 partitions but parallelism 2.*parallelism: 4"):
        mf.parse(engines(partitions=4, parallelism=2))


def test_two_functions_of_one_topic_must_agree_on_the_count() -> None:
    raw = {"functions": [{"engine": "executor", "service": "s", "name": "a", "partitions": 2, "parallelism": 2},
                         {"engine": "executor", "service": "s", "name": "b", "partitions": 3, "parallelism": 3}]}
    with pytest.raises(DefinitionError, match=r"different partition counts \[2, 3\]"):
        mf.parse(raw)


def test_a_new_topic_is_created_and_a_partitioned_one_grown() -> None:
    manifest = mf.parse(engines(partitions=3, parallelism=3))
    topic = manifest.topics.workflow_engine
    admin = TopicsAdmin({})
    assert tool.apply_partitions(admin, tool.plan_partitions(admin, manifest)) == [  # type: ignore[arg-type]
        f"{topic}: create with 3 partitions"]
    assert admin.calls == [("create", topic, 3)]
    grown = TopicsAdmin({topic: 2})
    assert tool.apply_partitions(grown, tool.plan_partitions(grown, manifest)) == [  # type: ignore[arg-type]
        f"{topic}: grow from 2 to 3 partitions"]
    assert grown.calls == [("grow", topic, 3)]
    same = TopicsAdmin({topic: 3})
    assert tool.plan_partitions(same, manifest) == []  # type: ignore[arg-type]


def test_shrinking_is_refused_before_anything_changes() -> None:
    manifest = mf.parse({"app": "shop", "functions": [
        {"engine": "workflow", "partitions": 4, "parallelism": 4},
        {"engine": "tag", "partitions": 2, "parallelism": 2}]})
    admin = TopicsAdmin({manifest.topics.workflow_engine: 4, manifest.topics.tag_engine: 3})
    with pytest.raises(DefinitionError, match=r"tag-engine has 3 partitions, the manifest asks for 2: "
                                              r"Pulsar cannot remove partitions"):
        tool.plan_partitions(admin, manifest)  # type: ignore[arg-type]
    one = mf.parse(engines())
    with pytest.raises(DefinitionError, match="asks for 1: Pulsar cannot remove partitions"):
        tool.plan_partitions(TopicsAdmin({one.topics.workflow_engine: 2}), one)  # type: ignore[arg-type]


def test_partitioning_an_existing_plain_topic_is_refused() -> None:
    manifest = mf.parse(engines(partitions=2, parallelism=2))
    with pytest.raises(DefinitionError, match="exists non-partitioned.*cannot partition an existing topic"):
        tool.plan_partitions(TopicsAdmin({manifest.topics.workflow_engine: 0}), manifest)  # type: ignore[arg-type]


def test_apply_refuses_a_shrink_before_touching_schemas_or_functions(tmp_path: Any) -> None:
    manifest = mf.parse(engines(partitions=1))

    class Refusing(TopicsAdmin):
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"apply called {name} after the refusal")

    with pytest.raises(DefinitionError, match="nothing changed"):
        tool.apply(Refusing({manifest.topics.workflow_engine: 2}), manifest, tmp_path)  # type: ignore[arg-type]


def test_a_worker_that_has_not_heard_of_the_new_function_is_asked_again() -> None:
    """In a cluster another worker than the leader may answer 404 for a moment after the create."""

    class LaggingAdmin(FakeAdmin):
        unknown_for = 3

        def function(self, tenant: str, namespace: str, name: str) -> dict[str, Any] | None:
            if self.exists and self.unknown_for > 0:
                self.unknown_for -= 1
                return None
            return super().function(tenant, namespace, name)

    admin = LaggingAdmin()
    assert tool.create_or_update(admin, CONFIG, Path("f.zip")) == "created"  # type: ignore[arg-type]
    assert admin.unknown_for == 0
    assert admin.calls == [("created", 1), ("status", 1), ("updated", 3)]


def test_parallelism_written_as_text_is_read_as_before() -> None:
    manifest = mf.parse(engines(parallelism="3", partitions=3))
    assert manifest.functions[0].parallelism == 3
    with pytest.raises(DefinitionError, match=r"functions\[0\].parallelism must be a whole number >= 1"):
        mf.parse(engines(parallelism="many"))
