"""Group commit: many callers' writes in one transaction, each caller waiting for that commit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Items submitted while a batch is being written go into the next batch.

    `write_batch(items)` returns one result per item, in order; if it raises, every caller of that
    batch gets the exception. Nothing is acknowledged before it is committed, yet the database sees
    one commit per batch instead of one per caller.
    """

    def __init__(self, write_batch: Callable[[list[Item]], Awaitable[list[Result]]], max_batch: int = 200):
        self._write_batch = write_batch
        self.max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None

    async def submit(self, item: Item) -> Result:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                results = await self._write_batch([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
