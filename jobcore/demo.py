"""Demo handlers used by the console and the docs: ``jobcore.demo:handlers``."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import msgspec

from jobcore.model import Job
from jobcore.registry import Handlers

log = logging.getLogger("jobcore.demo")

handlers = Handlers()


class NoopArgs(msgspec.Struct, kw_only=True):
    note: str = ""


class SleepArgs(msgspec.Struct, kw_only=True):
    seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 1.0


class FailArgs(msgspec.Struct, kw_only=True):
    message: str = "demo failure"


class LaunchArgs(msgspec.Struct, kw_only=True):
    reservation_id: int
    instance_type: str = "t3.small"
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    step_seconds: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.5


@handlers.handler("noop", NoopArgs)
async def noop(job: Job[NoopArgs]) -> None:
    """Does nothing: for throughput tests."""


@handlers.handler("sleep", SleepArgs)
async def sleep(job: Job[SleepArgs]) -> None:
    log.info("sleeping %.2fs", job.args.seconds)
    await asyncio.sleep(job.args.seconds)


@handlers.handler("fail", FailArgs)
async def fail(job: Job[FailArgs]) -> None:
    raise RuntimeError(job.args.message)


@handlers.handler("launch", LaunchArgs)
async def launch(job: Job[LaunchArgs]) -> None:
    """Two steps, like the original instance-launch job."""
    a = job.args
    log.info("launching %d x %s for reservation %d", a.count, a.instance_type, a.reservation_id)
    await asyncio.sleep(a.step_seconds)
    log.info("instances running; tagging them with reservation %d", a.reservation_id)
    await asyncio.sleep(a.step_seconds)
    log.info("launch done")
