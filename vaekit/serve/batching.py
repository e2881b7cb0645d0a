"""Micro-batching: concurrent requests of one kind answered by one forward pass.

As Clipper's adaptive batching (Crankshaw et al., NSDI 2017, sec. 4.3): requests queue while a
forward pass runs, and the next pass takes all that waited (after at most ``wait_ms`` more, up to
``max_rows`` rows), so a busy server runs few large passes and an idle one answers at once.
The passes run one at a time in one worker thread, off the event loop.
"""
from __future__ import annotations

import asyncio
import collections
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Sequence


class MicroBatcher:
    """``await submit(rows, item)`` gives ``run_batch([item, ...])[i]`` for its item, ``rows`` being the
    item's number of examples. A pass that fails is retried item by item, so one bad request fails alone."""

    def __init__(self, run_batch: Callable[[Sequence[Any]], List[Any]], executor: ThreadPoolExecutor,
                 max_rows: int = 256, wait_ms: float = 0.0):
        self.run_batch, self.executor, self.max_rows, self.wait = run_batch, executor, max_rows, wait_ms / 1000
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
        loop = asyncio.get_running_loop()
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.queue:
                if self.wait and sum(entry[0] for entry in self.queue) < self.max_rows:
                    await asyncio.sleep(self.wait)  # let more requests arrive
                batch = self._take()
                items = [entry[1] for entry in batch]
                try:
                    results = await loop.run_in_executor(self.executor, self.run_batch, items)
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
                        future.set_result((await loop.run_in_executor(self.executor, self.run_batch, [item]))[0])
                    except Exception as e:  # noqa: BLE001 (the request's own error, answered by the app)
                        future.set_exception(e)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
