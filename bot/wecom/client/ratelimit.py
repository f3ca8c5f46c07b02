"""Per-API-path call budget, counted in fixed one-minute windows in the KV store (shared by processes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bot.kv import KeyValueStore

from .errors import RateLimited

LOCAL_LIMIT_ERRCODE = 45009  # reported as WeCom's own code so callers handle one kind of limit

# Calls a process reserves with one KV round trip: at most MAX_BLOCK, and at most 1/BLOCK_SHARE of
# the limit. Why so small: a block a process has not spent when the minute ends lapses unused, so
# with P processes the minute can fall short of the limit by at most P × (block − 1) calls. With
# block ≤ limit/200 that is under P/200 of the limit: under 5 % for up to 10 processes, whatever the
# limit (at WeCom's 10,000/min, block 16: 15 calls per process, under 5 % up to 33 processes). A
# process whose block is cut short by the limit takes what is left, so the total never exceeds it.
MAX_BLOCK = 16
BLOCK_SHARE = 200


class _Allowance:
    """What one process holds of one path's budget in one window."""

    __slots__ = ("window", "left", "spent", "reserving")

    def __init__(self, window: int):
        self.window = window
        self.left = 0  # reserved in the KV store and not used yet
        self.spent = False  # the shared counter reached the limit: nothing more this window
        self.reserving = asyncio.Lock()  # one KV reservation at a time per path and process


class RateLimiter:
    """Fixed-window limiter: at most `calls_per_minute` calls per path per wall-clock minute.

    The count is shared by every process through the KV store, reserved a small block at a time
    (see MAX_BLOCK), so most calls cost no KV round trip. When a window is full the caller waits
    for the next one if that is at most `max_wait` seconds away; otherwise it gets RateLimited at
    once. A job should not hold a worker slot idle for up to a minute: the runner can defer it and
    serve other work meanwhile.
    """

    def __init__(
        self,
        kv: KeyValueStore,
        corp_id: str,
        calls_per_minute: int,
        *,
        max_wait: float = 2.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self._kv = kv
        self._corp_id = corp_id
        self._limit = calls_per_minute
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._held: dict[str, _Allowance] = {}

    @property
    def calls_per_minute(self) -> int:
        return self._limit

    @calls_per_minute.setter
    def calls_per_minute(self, value: int) -> None:
        # Blocks reserved under the old limit may be too large for the new one: start over.
        self._limit = value
        self._held.clear()

    @property
    def block(self) -> int:
        return max(1, min(MAX_BLOCK, self._limit // BLOCK_SHARE))

    async def acquire(self, path: str) -> None:
        while True:
            now = self._clock()
            window = int(now // 60)
            if await self._take(path, window):
                return
            wait = (window + 1) * 60 - now
            if wait > self.max_wait:
                raise RateLimited(
                    LOCAL_LIMIT_ERRCODE,
                    f"local limit of {self._limit}/min reached for {path}",
                    retry_after=wait,
                )
            await self._sleep(wait)

    async def _take(self, path: str, window: int) -> bool:
        held = self._held.get(path)
        if held is None or held.window != window:
            held = self._held[path] = _Allowance(window)
        if not held.left and not held.spent:
            async with held.reserving:
                if not held.left and not held.spent:  # another caller may have reserved meanwhile
                    await self._reserve(path, held)
        if held.left:
            held.left -= 1
            return True
        return False

    async def _reserve(self, path: str, held: _Allowance) -> None:
        block = self.block
        key = f"wecom:rate:{self._corp_id}:{path}:{held.window}"
        # TTL a little past the window so clock skew between processes cannot revive a counter.
        count = await self._kv.incr(key, block, ttl=65)
        granted = max(0, min(block, self._limit - (count - block)))
        held.left += granted
        held.spent = granted < block
