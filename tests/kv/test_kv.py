"""The key-value store: both implementations honour the same contract."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bot.kv import KVUnavailable, MemoryStore, RedisStore
from tests.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def kv(request):
    store = MemoryStore() if request.param == "memory" else RedisStore(REDIS_URL, prefix=f"kvtest-{uuid.uuid4().hex}:")
    yield store
    await store.close()


async def test_values_expire(kv):
    await kv.set("token", "abc", ttl=0.2)
    assert await kv.get("token") == "abc"
    await asyncio.sleep(0.3)
    assert await kv.get("token") is None


async def test_a_value_comes_with_its_remaining_lifetime(kv):
    await kv.set("token", "abc", ttl=100)
    value, ttl = await kv.get_with_ttl("token")
    assert value == "abc" and 99 < ttl <= 100
    await kv.set("forever", "x")
    assert await kv.get_with_ttl("forever") == ("x", None)
    assert await kv.get_with_ttl("missing") == (None, None)


async def test_set_if_absent_is_a_dedup_key(kv):
    assert await kv.set_if_absent("seen:1", "1", ttl=5)
    assert not await kv.set_if_absent("seen:1", "1", ttl=5)
    await kv.delete("seen:1")
    assert await kv.set_if_absent("seen:1", "1", ttl=5)


async def test_counters_start_with_a_ttl_and_count_concurrently(kv):
    results = await asyncio.gather(*(kv.incr("calls:minute", ttl=60) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    assert await kv.incr("calls:minute", 5) == 55


async def test_lock_excludes_and_times_out(kv):
    inside, overlaps = 0, []

    async def critical():
        nonlocal inside
        async with kv.lock("customer:wm1", timeout=5, wait=5):
            inside += 1
            overlaps.append(inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(critical() for _ in range(10)))
    assert max(overlaps) == 1

    async with kv.lock("customer:wm2", timeout=5, wait=1):
        with pytest.raises((TimeoutError, asyncio.TimeoutError)):
            async with kv.lock("customer:wm2", timeout=5, wait=0.1):
                pass


async def test_ping(kv):
    assert await kv.ping()


async def test_redis_down_is_a_clear_error():
    store = RedisStore("redis://127.0.0.1:1/0")
    try:
        assert not await store.ping()
        with pytest.raises(KVUnavailable):
            await store.get("x")
    finally:
        await store.close()
