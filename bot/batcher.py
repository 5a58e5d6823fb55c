"""Micro-batching: photos arriving within a few milliseconds share one trip to a worker thread.

Photos of one batch share one trip to the database and one forward pass (per photo no dearer up to
4 photos on ONNX Runtime, dearer beyond: bench/README.md "Serving", hence Settings.batch_max_size),
and a single worker thread keeps the model from fighting itself for the CPU cores. The event loop
only ever awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """``await submit(item)`` returns ``process([..., item, ...])[i]``, computed in a worker thread.

    ``process`` must return one result per item, in order. An exception from it fails every item
    of that batch; the next batch runs normally.
    """

    def __init__(
        self, process: Callable[[Sequence[T]], Sequence[R]], *, window_s: float, max_size: int
    ) -> None:
        self.process = process
        self.window_s = window_s
        self.max_size = max(1, max_size)
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.batches: list[int] = []  # sizes of recent batches, for benchmarks and tests

    async def submit(self, item: T) -> R:
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run(), name="dogbot:micro-batcher")
        assert self._queue is not None
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _run(self) -> None:
        assert self._queue is not None
        queue, loop = self._queue, asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.window_s
            while len(batch) < self.max_size:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            self.batches = [*self.batches[-999:], len(batch)]
            try:
                results = await asyncio.to_thread(self.process, [item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
