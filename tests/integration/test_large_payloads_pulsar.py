"""A 50 MB task result on Pulsar: the executor Function keeps it aside (a claim check in a
folder every process shares), the workflow engine and the client read it back through the
same codec chain, and no message comes near the broker's 5 MB limit."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.payloads import ClaimCheck, CodecChain, FolderStore
from tests.integration.conftest import CONNECTION, deployed_app

pytestmark = pytest.mark.pulsar
SIZE = 50 * 1024 * 1024
THRESHOLD = 256 * 1024
SOURCE = f'''
import hashlib

import pulsarflow as pf


@pf.task(service="bulk")
def produce(seed: str) -> str:
    block = hashlib.sha256(seed.encode()).hexdigest()
    return (block * ({SIZE} // len(block) + 1))[:{SIZE}]


@pf.workflow(name="bulky")
async def bulky(ctx: pf.WorkflowContext, seed: str) -> str:
    return await ctx.task(produce, seed)
'''


def test_a_50_mb_result_travels_as_a_claim_check(pulsar_admin: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from pulsarflow.pulsar.worker import connect

    module = f"bulky_{time.time_ns()}"
    (tmp_path / f"{module}.py").write_text(SOURCE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    store = tmp_path / "claims"
    store.mkdir()
    codecs = {"payload_codecs": "claim", "payload_store": f"folder:{store}", "payload_claim_bytes": THRESHOLD}
    functions = [{"name": "{app}-workflow-engine", "engine": "workflow", "config": codecs},
                 {"name": "{app}-executor-bulk", "engine": "executor", "service": "bulk", "config": codecs}]
    with deployed_app(pulsar_admin, tmp_path / "out", [module], functions, prefix="big") as manifest:
        client = connect(CONNECTION, topics=manifest.topics,
                         converter=CodecChain([ClaimCheck(FolderStore(str(store)), THRESHOLD)]))
        try:
            result = client.start("bulky", "s1", id=f"big-{time.time_ns()}").result(timeout=300)
        finally:
            client.close()
    block = hashlib.sha256(b"s1").hexdigest()
    assert len(result) == SIZE and result == (block * (SIZE // len(block) + 1))[:SIZE]
    kept = [p.stat().st_size for p in store.iterdir()]
    assert kept and max(kept) >= SIZE, f"the result was not kept aside: {kept}"
