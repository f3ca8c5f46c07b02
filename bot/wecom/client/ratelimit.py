"""Per-API-path call budget, counted in fixed one-minute windows in the KV store (shared by processes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bot.kv import KeyValueStore

from .errors import RateLimited

LOCAL_LIMIT_ERRCODE = 45009  # reported as WeCom's own code so callers handle one kind of limit


class RateLimiter:
    """Fixed-window limiter: at most `calls_per_minute` calls per path per wall-clock minute.

    When a window is full the caller waits for the next one if that is at most `max_wait` seconds
    away; otherwise it gets RateLimited at once. A job should not hold a worker slot idle for up to
    a minute: the runner can defer it and serve other work meanwhile.
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
        self.calls_per_minute = calls_per_minute
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep

    async def acquire(self, path: str) -> None:
        while True:
            now = self._clock()
            window = int(now // 60)
            key = f"wecom:rate:{self._corp_id}:{path}:{window}"
            # TTL a little past the window so clock skew between processes cannot revive a counter.
            count = await self._kv.incr(key, ttl=65)
            if count <= self.calls_per_minute:
                return
            wait = (window + 1) * 60 - now
            if wait > self.max_wait:
                raise RateLimited(
                    LOCAL_LIMIT_ERRCODE,
                    f"local limit of {self.calls_per_minute}/min reached for {path}",
                    retry_after=wait,
                )
            await self._sleep(wait)
