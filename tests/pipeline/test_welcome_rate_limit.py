"""Above WeCom's per-API limit the welcome job uses the whole budget and no call on a code past 20 s."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select, update

from bot.customers.welcome import WELCOMES_EXPIRED
from bot.storage.models import Job
from tests.conftest import until

WELCOME_PATH = "externalcontact/send_welcome_msg"


async def test_over_the_limit_the_budget_is_used_and_expired_codes_cost_no_call(world, guide):
    if time.time() % 60 > 45:  # the limiter counts per wall-clock minute: start well inside one
        await asyncio.sleep(61 - time.time() % 60)
    world.services.wecom.limiter.calls_per_minute = 2
    expired_before = WELCOMES_EXPIRED._value.get()
    world.emulator.clock = lambda: time.time() - 15  # each code has 5 s of its 20 left on arrival
    for external_userid in ("wm1", "wm2", "wm3", "wm4"):
        await world.driver.customer_adds_guide(external_userid, guide)

    async def two_sent():
        return len([c for c in world.emulator.calls_to(WELCOME_PATH) if c["errcode"] == 0]) == 2

    await until(two_sent)
    await asyncio.sleep(5.5)  # the deferred two are past their 20 s now
    async with world.services.db.session() as session, session.begin():  # due now, if still queued
        await session.execute(update(Job).where(Job.kind == "customers.welcome", Job.status == "queued")
                              .values(run_at=time.time()))
    await until(lambda: _is(WELCOMES_EXPIRED._value.get() == expired_before + 2))
    await world.settle()
    assert len(world.emulator.calls_to(WELCOME_PATH)) == 2  # the budget, and not one call more


async def _is(value):
    return value


async def test_a_welcome_the_budget_cannot_reach_in_time_ends_at_once_without_a_call(world, guide):
    if time.time() % 60 > 30:  # the next minute's budget must be further away than the codes live
        await asyncio.sleep(61 - time.time() % 60)
    world.services.wecom.limiter.calls_per_minute = 2
    world.emulator.rate_limit_per_minute = 2  # WeCom's own limit, the same: a call over it is a 45009
    expired_before = WELCOMES_EXPIRED._value.get()
    world.emulator.clock = lambda: time.time() - 12  # each code has 8 s of its 20 left on arrival
    for external_userid in ("wm1", "wm2", "wm3", "wm4"):
        await world.driver.customer_adds_guide(external_userid, guide)

    async def ended():
        async with world.services.db.session() as session:
            return (await session.scalar(select(func.count()).select_from(Job).where(
                Job.kind == "customers.welcome", Job.status == "expired"))) == 2

    await until(ended, within=8)  # not at the next minute: their codes are gone by then
    assert WELCOMES_EXPIRED._value.get() == expired_before + 2
    calls = world.emulator.calls_to(WELCOME_PATH)
    assert [call["errcode"] for call in calls] == [0, 0]  # the budget, no 45009, no call on a lost code
