"""Group commit: many callers' writes in one transaction, each caller waiting for that commit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def _never(_exc: Exception) -> bool:
    return False


class GroupCommit(Generic[Item, Result]):
    """Items submitted while a batch is being written go into the next batch.

    `write_batch(items)` returns one result per item, in order. Nothing is acknowledged before it
    is committed, yet the database sees one commit per batch instead of one per caller. When a
    batch raises an error for which `retry_alone(error)` is true (one bad item, not a store that
    is down), its items are written one by one, so only the failing item's caller gets the error;
    otherwise every caller of the batch gets it.
    """

    def __init__(self, write_batch: Callable[[list[Item]], Awaitable[list[Result]]], max_batch: int = 200,
                 retry_alone: Callable[[Exception], bool] = _never):
        self._write_batch = write_batch
        self.max_batch = max_batch
        self._retry_alone = retry_alone
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
                if len(batch) > 1 and self._retry_alone(exc):
                    await self._write_one_by_one(batch)
                else:
                    _fail(batch, exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _write_one_by_one(self, batch: list[tuple[Item, asyncio.Future]]) -> None:
        for index, (item, future) in enumerate(batch):
            try:
                [result] = await self._write_batch([item])
            except Exception as exc:
                if not self._retry_alone(exc):  # the store itself failed: the rest would fail too
                    _fail(batch[index:], exc)
                    return
                _fail([(item, future)], exc)
                continue
            if not future.done():
                future.set_result(result)


def _fail(batch: list[tuple[object, asyncio.Future]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
