from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import jobcore
from jobcore.local import PROBE_ENV, LocalServer
from jobcore.memory import MemoryQueue
from jobcore.redis.backend import RedisQueue
from tests.support.servers import RedisCluster, RedisServer, SentinelSetup

BACKENDS = ["memory", "fakeredis", "redis", "cluster", "sentinel"]
NOTHING_LISTENS = "127.0.0.1:1"


@pytest.fixture(scope="session", autouse=True)
def _own_default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """With no URL jobcore would use a Redis on localhost:6379 (this machine's,
    which the suite must not touch) or the user's local server: here it probes
    a port where nothing listens, and its local server lives in the session's
    temporary directory, stopped at the end. Subprocesses inherit both."""
    os.environ.pop("JOBCORE_URL", None)
    os.environ[PROBE_ENV] = NOTHING_LISTENS
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    LocalServer().stop()


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


# The Cluster and Sentinel setups are tests.support.servers's (tests/test_servers.py
# checks them); each starts only when a test asks for it, once per session.


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A 3-master Redis Cluster with one replica each, the suite's own."""
    try:
        cluster = RedisCluster(Path(tmp_path_factory.mktemp("cluster")))
    except RuntimeError as exc:  # no server binary
        pytest.fail(f"cannot set up the private Redis Cluster: {exc}", pytrace=False)
    try:
        cluster.start()
    except RuntimeError as exc:
        cluster.cleanup()
        pytest.fail(f"cannot start the private Redis Cluster: {exc}", pytrace=False)
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="session")
def sentinel_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A primary and a replica watched by three Sentinels, the suite's own."""
    try:
        setup = SentinelSetup(Path(tmp_path_factory.mktemp("sentinel")))
    except RuntimeError as exc:  # no server binary
        pytest.fail(f"cannot set up the private Sentinel setup: {exc}", pytrace=False)
    try:
        setup.start()
    except RuntimeError as exc:
        setup.cleanup()
        pytest.fail(f"cannot start the private Sentinel setup: {exc}", pytrace=False)
    yield setup
    setup.cleanup()


@pytest.fixture
def cluster_url(redis_cluster: RedisCluster) -> str:
    """One node's redis:// URL (jobcore detects the cluster from it), healed (a
    previous test may have killed a node or left a slot migrating) and flushed
    on every master."""
    redis_cluster.heal()
    redis_cluster.flushall()
    return redis_cluster.seed_url


@pytest.fixture
def sentinel_url(sentinel_setup: SentinelSetup) -> str:
    """Its redis+sentinel:// URL, healed and flushed (the replica has applied it)."""
    sentinel_setup.heal()
    sentinel_setup.flushall()
    return sentinel_setup.url


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
        q = RedisQueue(request.getfixturevalue(f"{kind}_url"))
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


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A TLS-only server (private CA; client certificates accepted, not required).
    tests/redis/test_tls.py has its own module fixture of this name, which wins there."""
    try:
        server = RedisServer(Path(tmp_path_factory.mktemp("tls")), tls=True)
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start the private TLS server: {exc}", pytrace=False)
    yield server
    server.cleanup()
