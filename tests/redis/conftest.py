from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis.support import PrivateRedis, require_redis


@pytest.fixture
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()
