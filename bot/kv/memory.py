from __future__ import annotations

import asyncio
import time

from bot.kv.base import KeyValueStore


class MemoryStore(KeyValueStore):
    """In-process store for the embedded default and tests; single process only.

    Every call is on the event loop's hot path (token, rate limit, dedup keys): plain dict work, no
    copies, and a free lock is taken without a task or a timer.
    """

    name = "memory"

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, float | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _item(self, key: str) -> tuple[str, float | None] | None:
        item = self._values.get(key)
        if item is not None and item[1] is not None and item[1] <= time.monotonic():
            del self._values[key]
            return None
        return item

    @staticmethod
    def _expiry(ttl: float | None) -> float | None:
        return None if ttl is None else time.monotonic() + ttl

    async def get(self, key):
        item = self._item(key)
        return None if item is None else item[0]

    async def get_with_ttl(self, key):
        item = self._item(key)
        if item is None:
            return None, None
        value, expires_at = item
        return value, None if expires_at is None else expires_at - time.monotonic()

    async def set(self, key, value, ttl=None):
        self._values[key] = (value, self._expiry(ttl))

    async def set_if_absent(self, key, value, ttl):
        if self._item(key) is not None:
            return False
        self._values[key] = (value, self._expiry(ttl))
        return True

    async def delete(self, key):
        self._values.pop(key, None)

    async def incr(self, key, amount=1, ttl=None):
        item = self._item(key)
        if item is None:
            self._values[key] = (str(amount), self._expiry(ttl))
            return amount
        value = int(item[0]) + amount
        self._values[key] = (str(value), item[1])
        return value

    def lock(self, key, timeout=30.0, wait=30.0):
        return _HeldLock(self._locks, key, wait)

    async def ping(self):
        return True


class _HeldLock:
    """`async with store.lock(key)`: a per-key asyncio.Lock, forgotten again when idle."""

    __slots__ = ("_locks", "_key", "_wait", "_lock")

    def __init__(self, locks: dict[str, asyncio.Lock], key: str, wait: float):
        self._locks, self._key, self._wait = locks, key, wait

    async def __aenter__(self) -> None:
        lock = self._lock = self._locks.setdefault(self._key, asyncio.Lock())
        if lock.locked():
            # Only a contended lock needs wait_for (in 3.11 it wraps the wait in a task).
            await asyncio.wait_for(lock.acquire(), self._wait)
        else:
            await lock.acquire()  # free: returns without suspending

    async def __aexit__(self, *exc) -> None:
        lock = self._lock
        lock.release()
        # Forget idle locks so per-customer keys do not accumulate forever.
        if not lock.locked() and not getattr(lock, "_waiters", None):
            self._locks.pop(self._key, None)
