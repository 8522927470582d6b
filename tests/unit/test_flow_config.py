"""Flow-control settings: every place they are set refuses a bad limit at once, naming the setting."""

from __future__ import annotations

import pytest

from pulsarflow.deploy import manifest
from pulsarflow.errors import DefinitionError
from pulsarflow.runtime.flow import FlowLimit, limit_from_config, limits_from_flags, store_from_config


@pytest.mark.parametrize("value", [0, -3, 2.5, "2.5", "", None, True, "ten"])
def test_a_limit_must_be_a_whole_number_of_at_least_one(value: object) -> None:
    if value is None:
        assert limit_from_config({"max_concurrent": value}) is None  # absent: no limit
        return
    with pytest.raises(DefinitionError, match=r"userConfig\.max_concurrent must be a whole number of at least 1 "
                                              r"\(attempts of the service running at once.*leave it out for no limit"):
        limit_from_config({"max_concurrent": value})


def test_zero_says_it_would_never_start_an_attempt() -> None:
    with pytest.raises(DefinitionError, match="0 would never start an attempt"):
        FlowLimit(max_starts_per_second=0)


def test_user_config_limits() -> None:
    limit = limit_from_config({"max_concurrent": "4", "max_starts_per_second": 10, "flow_lease_ms": 5000})
    assert limit == FlowLimit(max_concurrent=4, max_starts_per_second=10, lease_ms=5000)
    assert limit.interval_ms == 100
    assert limit_from_config({}) is None
    with pytest.raises(DefinitionError, match="sets \\['flow_lease_ms'\\] but no limit"):
        limit_from_config({"flow_lease_ms": 5000})
    with pytest.raises(DefinitionError, match="flow_retry_ms must be a whole number of at least 10"):
        limit_from_config({"max_concurrent": 1, "flow_retry_ms": 1})
    with pytest.raises(DefinitionError, match="flow_store must be 'function'"):
        store_from_config({"flow_store": "zookeeper"})


def test_worker_flags() -> None:
    limits = limits_from_flags(["payments=5", "shipping=1"], ["payments=20"])
    assert limits == {"payments": FlowLimit(max_concurrent=5, max_starts_per_second=20),
                      "shipping": FlowLimit(max_concurrent=1)}
    with pytest.raises(DefinitionError, match="--max-concurrent takes SERVICE=N"):
        limits_from_flags(["5"])
    with pytest.raises(DefinitionError, match="--max-starts-per-second payments must be a whole number"):
        limits_from_flags([], ["payments=0"])


def _manifest(**executor: object) -> manifest.Manifest:
    entry = {"name": "x", "engine": "executor", "service": "payments", **executor}
    return manifest.parse({"functions": [entry]}, "functions.yaml")


def test_the_manifest_checks_flow_keys_when_read_and_writes_them_to_user_config() -> None:
    m = _manifest(max_concurrent=3, config={"max_starts_per_second": 7})
    config = manifest.function_config(m, m.functions[0], "x.zip")["userConfig"]
    assert (config["service"], config["max_concurrent"], config["max_starts_per_second"]) == ("payments", 3, 7)
    with pytest.raises(DefinitionError, match=r"functions\[0\]\.max_concurrent must be a whole number"):
        _manifest(max_concurrent=0)
    with pytest.raises(DefinitionError, match=r"functions\[0\]\.max_starts_per_second must be a whole number"):
        _manifest(config={"max_starts_per_second": -1})
    with pytest.raises(DefinitionError, match="flow_store: redis keeps the leases in the app's Redis"):
        _manifest(max_concurrent=2, flow_store="redis")
    with pytest.raises(DefinitionError, match="limit an executor's service, not the workflow engine"):
        manifest.parse({"functions": [{"engine": "workflow", "max_concurrent": 2}]})


def test_an_executor_with_redis_leases_gets_the_redis_secret() -> None:
    m = manifest.parse({"state": "redis", "redis_url": "redis://127.0.0.1:6379/7", "functions": [
        {"name": "x", "engine": "executor", "service": "payments", "max_concurrent": 2, "flow_store": "redis"},
        {"name": "y", "engine": "executor", "service": "other"}]})
    first, second = (manifest.function_config(m, spec, "p.zip") for spec in m.functions)
    assert first["secrets"] == {"redis_url": "redis://127.0.0.1:6379/7"}
    assert "secrets" not in second
