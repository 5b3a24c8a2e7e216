from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import jobcore
from jobcore.memory import MemoryQueue
from jobcore.redis_backend import RedisQueue
from jobcore.testing import RedisServer

BACKENDS = ["memory", "fakeredis", "redis"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The suite's own redis-server. Failing to start it fails the tests loudly."""
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start the private redis-server: {exc}", pytrace=False)
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    client = redis_server.client()
    client.flushall()
    client.close()
    yield redis_server.url


def fake_queue() -> RedisQueue:
    import fakeredis

    server = fakeredis.FakeServer()

    def factory() -> fakeredis.FakeAsyncRedis:
        return fakeredis.FakeAsyncRedis(server=server)

    return RedisQueue("redis://fakeredis/0", client_factory=factory)


@pytest.fixture(params=BACKENDS)
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[jobcore.Queue]:
    """The same contract, on every backend."""
    kind = request.param
    q: jobcore.Queue
    if kind == "memory":
        q = MemoryQueue()
    elif kind == "fakeredis":
        q = fake_queue()
    else:
        url = request.getfixturevalue("redis_url")
        q = RedisQueue(url)
    yield q
    await q.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def cli_env(repo_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{repo_root}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.pop("JOBCORE_URL", None)
    return env
