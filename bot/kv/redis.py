from __future__ import annotations

from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.kv.base import KeyValueStore, KVError, KVUnavailable


def _kv_error(exc: RedisError) -> KVError:
    """An outage (the job runner retries it without spending attempts) or a refused command."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        return KVUnavailable(str(exc))
    return KVError(f"{type(exc).__name__}: {exc}")


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(1, int(seconds * 1000))


class RedisStore(KeyValueStore):
    """Redis-backed store shared by every process; errors surface as KVUnavailable (outage) or KVError."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "wa:") -> None:
        self._redis = aioredis.from_url(
            url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self._prefix = prefix

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def get(self, key):
        try:
            return await self._redis.get(self._k(key))
        except RedisError as exc:
            raise _kv_error(exc) from exc

    async def get_with_ttl(self, key):
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._k(key))
                pipe.pttl(self._k(key))
                value, pttl = await pipe.execute()
        except RedisError as exc:
            raise _kv_error(exc) from exc
        if value is None:
            return None, None
        return value, None if pttl < 0 else pttl / 1000

    async def set(self, key, value, ttl=None):
        try:
            await self._redis.set(self._k(key), value, px=_ms(ttl))
        except RedisError as exc:
            raise _kv_error(exc) from exc

    async def set_if_absent(self, key, value, ttl):
        try:
            return bool(await self._redis.set(self._k(key), value, px=_ms(ttl), nx=True))
        except RedisError as exc:
            raise _kv_error(exc) from exc

    async def delete(self, key):
        try:
            await self._redis.delete(self._k(key))
        except RedisError as exc:
            raise _kv_error(exc) from exc

    async def incr(self, key, amount=1, ttl=None):
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(self._k(key), amount)
                if ttl is not None:
                    pipe.pexpire(self._k(key), _ms(ttl), nx=True)
                results = await pipe.execute()
            return int(results[0])
        except RedisError as exc:
            raise _kv_error(exc) from exc

    @asynccontextmanager
    async def lock(self, key, timeout=30.0, wait=30.0):
        lock = self._redis.lock(self._k("lock:" + key), timeout=timeout, blocking_timeout=wait)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise _kv_error(exc) from exc
        if not acquired:
            raise TimeoutError(f"lock {key!r} not acquired within {wait}s")
        try:
            yield
        finally:
            try:
                await lock.release()
            except (LockError, RedisError):
                pass  # expired while held, or Redis went away: the TTL frees it

    async def ping(self):
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def close(self):
        await self._redis.aclose()
