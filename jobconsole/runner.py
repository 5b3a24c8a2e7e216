"""Where the console's queue I/O runs.

For Redis every call runs on a private I/O thread with its own event loop and
connection, so network waits and payload decoding never touch the UI's loop.
The memory backend lives in the process and its queue is bound to the loop that
first used it (an asyncio.Condition), so there calls simply run on the UI loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import jobcore
from jobcore.loop_thread import LoopThread

T = TypeVar("T")
QueueCall = Callable[[jobcore.Queue], Coroutine[Any, Any, T]]


class Runner:
    """Runs ``fn(queue)`` somewhere suitable and returns its result."""

    def __init__(self, queue: jobcore.Queue) -> None:
        self.queue = queue

    async def call(self, fn: QueueCall[T]) -> T:
        return await fn(self.queue)

    def start(self) -> None:
        """Nothing to start for the in-process backend."""

    async def close(self) -> None:
        await self.queue.close()


class ThreadRunner(Runner):
    """Owns a daemon thread running an event loop; the queue is only used there."""

    def __init__(self, queue: jobcore.Queue) -> None:
        super().__init__(queue)
        self._io = LoopThread("jobconsole-io", start=False)

    def start(self) -> None:
        self._io.start()

    async def call(self, fn: QueueCall[T]) -> T:
        if not self._io.running:
            self.start()
        # Cancelling the awaiting task (e.g. at exit) cancels the call on the I/O loop too.
        return await self._io.call(fn(self.queue))

    async def close(self) -> None:
        if not self._io.running:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call(lambda q: q.close()), 2)
        await asyncio.to_thread(self._io.stop, 5)


def runner_for(queue: jobcore.Queue, in_process: bool) -> Runner:
    return Runner(queue) if in_process else ThreadRunner(queue)
