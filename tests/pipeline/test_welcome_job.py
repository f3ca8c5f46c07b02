"""The welcome job names the new-member benefit (the enrich sweep grants it) and never spends a
WeCom call on a welcome code past its 20 s."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from bot.customers.welcome import WELCOMES_EXPIRED
from bot.members.models import Coupon, Member
from bot.storage.models import Job
from tests.conftest import until

WELCOME_PATH = "externalcontact/send_welcome_msg"


def welcomes(world, external_userid: str) -> list[dict]:
    return [m for m in world.emulator.outbox if m["channel"] == "welcome" and m["to"] == external_userid]


async def coupons_of(world, external_userid: str) -> list[Coupon]:
    async with world.services.db.session() as session:
        return list(await session.scalars(select(Coupon).join(Member, Member.id == Coupon.member_id)
                                          .where(Member.external_userid == external_userid)))


async def test_the_welcome_names_the_coupon_and_the_enrich_sweep_grants_it(world, guide):
    await world.driver.customer_adds_guide("wmNew", guide)
    await until(lambda: _async(welcomes(world, "wmNew")))
    [coupon] = await until(lambda: coupons_of(world, "wmNew"))
    greeting, benefit = welcomes(world, "wmNew")[0]["text"]["content"].split("\n")
    assert greeting.startswith("您好，我是") and benefit.startswith("🎁 新人礼：新人专享券")
    assert coupon.source == "welcome"
    async with world.services.db.session() as session:
        kinds = set(await session.scalars(select(Job.kind)))
    assert "members.grant_welcome" not in kinds and "customers.enrich" in kinds


async def test_an_add_without_a_welcome_code_still_gets_the_benefit(world, guide):
    world.emulator.members[guide].console_welcome = {"text": {"content": "控制台欢迎语"}}
    await world.driver.customer_adds_guide("wmConsole", guide)
    await until(lambda: coupons_of(world, "wmConsole"))
    await world.settle()
    assert welcomes(world, "wmConsole") == [] and len(await coupons_of(world, "wmConsole")) == 1


async def test_a_code_older_than_20_s_is_not_sent_but_counted_and_the_benefit_stays(world, guide):
    expired_before = WELCOMES_EXPIRED._value.get()
    world.emulator.clock = lambda: time.time() - 25  # the event's CreateTime is 25 s old on arrival
    await world.driver.customer_adds_guide("wmLate", guide)
    await until(lambda: coupons_of(world, "wmLate"))
    await world.settle()
    assert world.emulator.calls_to(WELCOME_PATH) == []
    assert WELCOMES_EXPIRED._value.get() == expired_before + 1
    async with world.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Member)
                                    .where(Member.external_userid == "wmLate")) == 1


async def all_enriched(world) -> bool:
    from bot.customers.models import CustomerBinding

    async with world.services.db.session() as session:
        return None not in set(await session.scalars(select(CustomerBinding.enriched_at)))


async def _async(value):
    return value


async def test_a_new_member_gets_the_join_bonus_and_the_coupon_once(world, guide):
    from bot.members.models import PointsEntry, PointsLot

    await world.driver.customer_adds_guide("wmBonus", guide)
    await until(lambda: coupons_of(world, "wmBonus"))
    await world.settle()
    await world.driver.customer_deletes_guide("wmBonus", guide)
    world.emulator.clock.advance(60)  # a later re-add, not the add_half → add pair of one add
    await world.driver.customer_adds_guide("wmBonus", guide)  # a re-add: greeted, no second benefit
    await until(lambda: _async(len(welcomes(world, "wmBonus")) == 2))
    await until(lambda: all_enriched(world))  # the re-add's sweep has run too
    async with world.services.db.session() as session:
        member = await session.scalar(select(Member).where(Member.external_userid == "wmBonus"))
        [entry] = await session.scalars(select(PointsEntry).where(PointsEntry.member_id == member.id))
        [lot] = await session.scalars(select(PointsLot).where(PointsLot.member_id == member.id))
    assert member.points_balance == 100 and member.source == "binding" and member.stage == "member"
    assert (entry.kind, entry.points, entry.idempotency_key) == ("earn", 100, f"join:{member.id}")
    assert lot.remaining == 100 and lot.entry_id == entry.id
    assert len(await coupons_of(world, "wmBonus")) == 1
    assert "新人礼" not in welcomes(world, "wmBonus")[1]["text"]["content"]


async def test_a_member_from_the_till_who_adds_a_guide_gets_the_welcome_coupon(world, guide):
    from bot.members.config import MembersConfig
    from bot.members.members import create_member

    async with world.services.db.session() as session, session.begin():
        await create_member(session, world.services.config(MembersConfig), source="order", external_userid="wmShopper")
    await world.driver.customer_adds_guide("wmShopper", guide)
    await until(lambda: coupons_of(world, "wmShopper"))
    await world.settle()
    assert "🎁 新人礼" in welcomes(world, "wmShopper")[0]["text"]["content"]
    async with world.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 1
