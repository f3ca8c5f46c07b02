from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

from bot.kv.base import KeyValueStore


class MemoryStore(KeyValueStore):
    """In-process store for the embedded default and tests; single process only."""

    name = "memory"

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, float | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _live(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None:
            return None
        value, expires_at = item
        if expires_at is not None and expires_at <= time.monotonic():
            del self._values[key]
            return None
        return value

    @staticmethod
    def _expiry(ttl: float | None) -> float | None:
        return None if ttl is None else time.monotonic() + ttl

    async def get(self, key):
        return self._live(key)

    async def set(self, key, value, ttl=None):
        self._values[key] = (value, self._expiry(ttl))

    async def set_if_absent(self, key, value, ttl):
        if self._live(key) is not None:
            return False
        self._values[key] = (value, self._expiry(ttl))
        return True

    async def delete(self, key):
        self._values.pop(key, None)

    async def incr(self, key, amount=1, ttl=None):
        current = self._live(key)
        if current is None:
            self._values[key] = (str(amount), self._expiry(ttl))
            return amount
        value = int(current) + amount
        self._values[key] = (str(value), self._values[key][1])
        return value

    @asynccontextmanager
    async def lock(self, key, timeout=30.0, wait=30.0):
        lock = self._locks.setdefault(key, asyncio.Lock())
        await asyncio.wait_for(lock.acquire(), wait)
        try:
            yield
        finally:
            lock.release()
            # Forget idle locks so per-customer keys do not accumulate forever.
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._locks.pop(key, None)

    async def ping(self):
        return True
