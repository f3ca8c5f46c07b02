"""KV round trips per WeCom call: the token is read from the KV store once per process until it
expires or WeCom rejects it; the per-API minute budget is reserved in small blocks, shared by
processes without ever going over the limit and using at least 95 % of it."""

from __future__ import annotations

import asyncio
import collections
import random

import pytest

from bot.config import EMULATOR_SECRET
from bot.kv import KeyValueStore, MemoryStore
from bot.wecom.client import RateLimited
from bot.wecom.client.ratelimit import RateLimiter
from tests.wecom.conftest import make_client

TAGS = "externalcontact/get_corp_tag_list"


class ProcessView(KeyValueStore):
    """One process's connection to a KV store shared by several: counts this process's calls."""

    name = "counting"

    def __init__(self, shared: KeyValueStore):
        self._shared = shared
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()

    def _count(self, op: str, key: str) -> None:
        self.calls[(op, key.split(":")[1])] += 1  # ("get", "token"), ("incr", "rate")

    def count(self, op: str, kind: str) -> int:
        return self.calls[(op, kind)]

    async def get(self, key):
        self._count("get", key)
        return await self._shared.get(key)

    async def get_with_ttl(self, key):
        self._count("get", key)
        return await self._shared.get_with_ttl(key)

    async def set(self, key, value, ttl=None):
        self._count("set", key)
        await self._shared.set(key, value, ttl)

    async def set_if_absent(self, key, value, ttl):
        self._count("set", key)
        return await self._shared.set_if_absent(key, value, ttl)

    async def delete(self, key):
        self._count("delete", key)
        await self._shared.delete(key)

    async def incr(self, key, amount=1, ttl=None):
        self._count("incr", key)
        return await self._shared.incr(key, amount, ttl)

    def lock(self, key, timeout=30.0, wait=30.0):
        self._count("lock", key)
        return self._shared.lock(key, timeout, wait)

    async def ping(self):
        return True


# The token


async def test_a_token_is_fetched_once_and_read_from_the_kv_once_per_process(session, emulator, state):
    shared, now = MemoryStore(), [1000.0]
    kv_one, kv_two = ProcessView(shared), ProcessView(shared)
    one = make_client(session, emulator, kv_one, monotonic=lambda: now[0])
    two = make_client(session, emulator, kv_two, monotonic=lambda: now[0])

    await asyncio.gather(*[one.externalcontact.get_corp_tag_list() for _ in range(20)])
    assert len(state.calls_to("gettoken")) == 1
    reads_to_fetch = kv_one.count("get", "token")
    assert reads_to_fetch <= 2  # missing, then checked again under the refresh lock
    for _ in range(20):
        await one.externalcontact.get_corp_tag_list()
    assert kv_one.count("get", "token") == reads_to_fetch  # 20 more calls, no KV round trip for the token

    for _ in range(20):  # another process takes the shared token from the KV store, once
        await two.externalcontact.get_corp_tag_list()
    assert kv_two.count("get", "token") == 1 and kv_two.count("lock", "token") == 0
    assert len(state.calls_to("gettoken")) == 1


async def test_the_copy_is_read_again_when_the_kv_entry_expires(session, emulator, state):
    shared, now = MemoryStore(), [1000.0]
    kv_one, kv_two = ProcessView(shared), ProcessView(shared)
    one = make_client(session, emulator, kv_one, monotonic=lambda: now[0])
    two = make_client(session, emulator, kv_two, monotonic=lambda: now[0])
    await one.externalcontact.get_corp_tag_list()
    await two.externalcontact.get_corp_tag_list()
    reads_one, reads_two = kv_one.count("get", "token"), kv_two.count("get", "token")
    ttl = (await shared.get_with_ttl(one.tokens.key(EMULATOR_SECRET)))[1]

    now[0] += ttl - 5  # still within the KV entry's life: no KV read
    await one.externalcontact.get_corp_tag_list()
    assert kv_one.count("get", "token") == reads_one

    now[0] += 10  # past it: the KV entry is gone, one process refreshes, the other reads its token
    await shared.delete(one.tokens.key(EMULATOR_SECRET))
    state.expire_tokens()
    await one.externalcontact.get_corp_tag_list()
    await two.externalcontact.get_corp_tag_list()
    assert len(state.calls_to("gettoken")) == 2
    assert kv_two.count("get", "token") == reads_two + 1
    assert set(errcodes(state)) == {0}  # no call went out with the expired token


async def test_a_token_wecom_rejects_is_dropped_and_replaced_through_the_kv(session, emulator, state):
    shared = MemoryStore()
    kv_one, kv_two = ProcessView(shared), ProcessView(shared)
    one, two = make_client(session, emulator, kv_one), make_client(session, emulator, kv_two)
    await one.externalcontact.get_corp_tag_list()
    await two.externalcontact.get_corp_tag_list()

    state.expire_tokens()  # WeCom ends the token early: both processes' copies answer 42001
    await one.externalcontact.get_corp_tag_list()
    await two.externalcontact.get_corp_tag_list()
    assert errcodes(state) == [0, 0, 42001, 0, 42001, 0]
    assert len(state.calls_to("gettoken")) == 2  # the second process took the first one's new token
    reads = kv_one.count("get", "token")
    await one.externalcontact.get_corp_tag_list()
    assert kv_one.count("get", "token") == reads  # the new copy is kept


def errcodes(state) -> list[int]:
    return [call["errcode"] for call in state.calls_to(TAGS)]


# The per-API minute budget


async def test_two_processes_share_a_small_limit_without_going_over(session, emulator, state):
    shared, limit = MemoryStore(), 400
    views = [ProcessView(shared), ProcessView(shared)]
    one, two = (make_client(session, emulator, kv, calls_per_minute=limit, max_rate_wait=0,
                            clock=lambda: 6000.0) for kv in views)
    assert one.limiter.block == 2
    await one.externalcontact.get_corp_tag_list()  # holds the other call of its block until the minute ends

    async def offer(api):
        try:
            await api.externalcontact.get_corp_tag_list()
            return True
        except RateLimited:
            return False

    sent = [await offer(api) for _ in range(250) for api in (two, two, one)]  # 750 more offered
    total = 1 + sum(sent)
    assert total == len(errcodes(state)) and set(errcodes(state)) == {0}
    assert 0.95 * limit <= total <= limit
    # One INCRBY per block, one per process to learn the minute is spent, one for gettoken's budget.
    assert sum(view.count("incr", "rate") for view in views) <= limit / one.limiter.block + 2 + 1


@pytest.mark.parametrize("limit", [10, 1000, 3200, 10000])
async def test_a_handful_of_processes_use_95_percent_of_any_limit_and_never_more(limit):
    shared, now = MemoryStore(), [60.0]
    views = [ProcessView(shared) for _ in range(10)]
    limiters = [RateLimiter(view, "ww1", limit, max_wait=0, clock=lambda: now[0]) for view in views]
    # Nine processes make one call each and keep the rest of their block; the tenth takes the rest.
    granted = [await _try(limiter) for limiter in limiters[:9]]
    granted += await asyncio.gather(*[_try(limiters[9]) for _ in range(limit)])
    assert 0.95 * limit <= sum(granted) <= limit
    block = limiters[0].block
    assert sum(view.count("incr", "rate") for view in views) <= 9 + limit / block + 1
    incrs = views[9].count("incr", "rate")
    assert not await _try(limiters[9]) and views[9].count("incr", "rate") == incrs  # spent: no KV call

    now[0] += 60  # the next minute: its own budget
    assert await _try(limiters[0])


async def test_randomly_interleaved_processes_never_exceed_the_limit():
    shared, limit, rng = MemoryStore(), 1000, random.Random(8)
    limiters = [RateLimiter(shared, "ww1", limit, max_wait=0, clock=lambda: 120.0) for _ in range(3)]
    calls = [rng.choice(limiters) for _ in range(1500)]
    granted = sum(await asyncio.gather(*[_try(limiter) for limiter in calls]))
    assert 0.95 * limit <= granted <= limit


async def _try(limiter: RateLimiter) -> bool:
    try:
        await limiter.acquire(TAGS)
        return True
    except RateLimited:
        return False
