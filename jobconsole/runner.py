"""Where the console's queue I/O runs.

For Redis every call runs on a private I/O thread with its own event loop and
connection, so network waits and payload decoding never touch the UI's loop.
The memory backend lives in the process and its queue is bound to the loop that
first used it (an asyncio.Condition), so there calls simply run on the UI loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import jobcore

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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="jobconsole-io", daemon=True)
        self._thread.start()

    async def call(self, fn: QueueCall[T]) -> T:
        if self._loop is None:
            self.start()
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(fn(self.queue), self._loop)
        # Cancelling the awaiting task (e.g. at exit) cancels the call on the I/O loop too.
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call(lambda q: q.close()), 2)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 5)
        self._loop = self._thread = None


def runner_for(queue: jobcore.Queue, in_process: bool) -> Runner:
    return Runner(queue) if in_process else ThreadRunner(queue)
