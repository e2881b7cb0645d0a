"""Micro-batching: concurrent requests of one kind answered by one forward pass.

As Clipper's adaptive batching (Crankshaw et al., NSDI 2017, sec. 4.3): requests queue while a
forward pass runs, and the next pass takes all that waited (after at most ``wait_ms`` more, up to
``max_rows`` rows), so a busy server runs few large passes and an idle one answers at once.
The passes run one at a time (:class:`Runner`).
"""
from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Sequence

INLINE_SECONDS = 0.002  # a pass this short runs on the event loop: handing it to a thread costs more


class Runner:
    """Runs one kind of forward pass: on the event loop itself while such passes take under 2 ms (a running
    average; every 32nd pass is timed on the loop again), else in the worker thread, so a long pass does not
    stall the requests arriving meanwhile. A pass is timed by its thread's CPU time, not the wall clock: on
    busy cores a 0.1 ms pass, preempted, took milliseconds by the clock, and was sent to the thread."""

    PROBE = 32

    def __init__(self, executor: ThreadPoolExecutor):
        self.executor, self.average, self.calls = executor, 0.0, 0

    def _timed(self, fn: Callable, *args) -> Any:
        start = time.thread_time()
        try:
            return fn(*args)
        finally:
            self.average = 0.8 * self.average + 0.2 * (time.thread_time() - start)

    async def __call__(self, fn: Callable, *args) -> Any:
        self.calls += 1
        if self.average < INLINE_SECONDS or self.calls % self.PROBE == 0:
            return self._timed(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._timed, fn, *args)


class MicroBatcher:
    """``await submit(rows, item)`` gives ``run_batch([item, ...])[i]`` for its item, ``rows`` being the
    item's number of examples. A pass that fails is retried item by item, so one bad request fails alone."""

    def __init__(self, run_batch: Callable[[Sequence[Any]], List[Any]], runner: Runner,
                 max_rows: int = 256, wait_ms: float = 0.0):
        self.run_batch, self.runner, self.max_rows, self.wait = run_batch, runner, max_rows, wait_ms / 1000
        self.queue: collections.deque = collections.deque()
        self.ready = asyncio.Event()
        self.worker = None
        self.passes = self.items = 0  # how many forward passes answered how many requests

    async def submit(self, rows: int, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((rows, item, future))
        self.ready.set()
        if self.worker is None:
            self.worker = asyncio.ensure_future(self._work())
        return await future

    def _take(self) -> list:
        batch, rows = [], 0
        while self.queue and (not batch or rows + self.queue[0][0] <= self.max_rows):
            entry = self.queue.popleft()
            batch.append(entry)
            rows += entry[0]
        return batch

    async def _work(self) -> None:
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.queue:
                if self.wait and sum(entry[0] for entry in self.queue) < self.max_rows:
                    await asyncio.sleep(self.wait)  # let more requests arrive
                batch = self._take()
                items = [entry[1] for entry in batch]
                try:
                    results = await self.runner(self.run_batch, items)
                except Exception:  # noqa: BLE001 (answered per item below)
                    results = None
                self.passes, self.items = self.passes + 1, self.items + len(batch)
                for i, (_, item, future) in enumerate(batch):
                    if future.done():  # the client went away
                        continue
                    if results is not None:
                        future.set_result(results[i])
                        continue
                    try:
                        future.set_result((await self.runner(self.run_batch, [item]))[0])
                    except Exception as e:  # noqa: BLE001 (the request's own error, answered by the app)
                        future.set_exception(e)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
