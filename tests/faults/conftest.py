"""Fixtures for the fault-injection suite: a private redis-server per test, real
``jobcore worker`` subprocesses, and the audit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from jobcore.redis.backend import RedisQueue
from tests.support.servers import RedisServer

from .audit import Audit
from .handlers import handlers
from .procs import Workers


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for one test (append-only, so it can be restarted)."""
    srv = RedisServer(tmp_path / "redis", appendonly=True)
    try:
        srv.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start a private redis-server: {exc}", pytrace=False)
    yield srv
    srv.cleanup()


@pytest.fixture
def url(server: RedisServer) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


@pytest.fixture
def audit_url(server: RedisServer) -> str:
    """Audit records live in DB 1: jobcore's keys stay alone in DB 0."""
    return f"redis://127.0.0.1:{server.port}/1"


@pytest.fixture
def workers(url: str, audit_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    pool = Workers(url, audit_url, tmp_path)
    yield pool
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(pool.tails())
    pool.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


@pytest.fixture
async def queue(url: str) -> AsyncIterator[RedisQueue]:
    q = RedisQueue(url)
    q.declare_handlers(handlers)
    yield q
    await q.close()


@pytest.fixture
def audit(url: str, audit_url: str) -> Iterator[Audit]:
    a = Audit(url, audit_url)
    yield a
    a.close()
