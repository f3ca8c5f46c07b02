"""One rule for a new customer (bot/customers/welcome.py `is_first_add`): end to end through the
emulator, the welcome of an add names the new-member benefit exactly when that add grants it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.customers.models import CustomerBinding
from bot.customers.welcome import is_first_add
from bot.members.models import Coupon, Member
from tests.conftest import until

AT = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)


def welcomes(world, external_userid: str) -> list[str]:
    return [m["text"]["content"] for m in world.emulator.outbox
            if m["channel"] == "welcome" and m["to"] == external_userid]


async def coupons_held(world, external_userid: str) -> int:
    async with world.services.db.session() as session:
        return await session.scalar(select(func.count(Coupon.id)).join(Member, Member.id == Coupon.member_id)
                                    .where(Member.external_userid == external_userid))


async def bindings_enriched(world, external_userid: str, count: int) -> bool:
    async with world.services.db.session() as session:
        enriched = list(await session.scalars(select(CustomerBinding.enriched_at)
                                              .where(CustomerBinding.external_userid == external_userid)))
    return len(enriched) == count and None not in enriched


async def one_add(world, external_userid: str, bindings: int, *events) -> tuple[bool, bool]:
    """Play the events of one add (the driver's coroutines, in order); then (its welcome names the
    new-member benefit, it granted a coupon), once the customer has `bindings` bindings, all enriched."""
    sent, held = len(welcomes(world, external_userid)), await coupons_held(world, external_userid)
    for event in events:
        await event()
    await until(lambda: len(welcomes(world, external_userid)) > sent)
    await until(lambda: bindings_enriched(world, external_userid, bindings))
    await world.settle()
    [welcome] = welcomes(world, external_userid)[sent:]  # greeted once per add
    return "🎁 新人礼" in welcome, await coupons_held(world, external_userid) > held


def adds(world, external_userid: str, userid: str, **kwargs):
    return lambda: world.driver.customer_adds_guide(external_userid, userid, **kwargs)


async def test_a_first_add_names_the_benefit_and_grants_it(world, guide):
    assert await one_add(world, "wmFirst", 1, adds(world, "wmFirst", guide)) == (True, True)


@pytest.mark.parametrize("half_brings_a_code", [True, False])
async def test_add_half_then_add_is_one_first_add(world, guide, half_brings_a_code):
    member = world.emulator.members[guide]

    async def half():
        member.console_welcome = not half_brings_a_code  # without a code, the add's code greets...
        await world.driver.customer_adds_guide("wmHalf", guide, half=True)
        if not half_brings_a_code:  # ...after the add_half's binding exists
            await until(lambda: bindings_enriched(world, "wmHalf", 1))
        member.console_welcome = False
        world.emulator.clock.advance(3)  # the guide confirms a moment later: the same add

    assert await one_add(world, "wmHalf", 1, half, adds(world, "wmHalf", guide)) == (True, True)
    assert len(welcomes(world, "wmHalf")) == 1 and await coupons_held(world, "wmHalf") == 1


async def test_a_re_add_after_a_deletion_is_not_a_first_add(world, guide):
    assert await one_add(world, "wmAgain", 1, adds(world, "wmAgain", guide)) == (True, True)
    await world.driver.customer_deletes_guide("wmAgain", guide)

    async def unbound():
        async with world.services.db.session() as session:
            return await session.scalar(select(CustomerBinding.ended_at)
                                        .where(CustomerBinding.external_userid == "wmAgain"))

    await until(unbound)
    world.emulator.clock.advance(60)  # a later add, not the add_half → add pair of one add
    assert await one_add(world, "wmAgain", 2, adds(world, "wmAgain", guide)) == (False, False)


@pytest.mark.parametrize("still_friends", [True, False])
async def test_a_customer_bound_to_another_guide_before_is_not_new(world, guide, still_friends):
    world.emulator.add_member("guide2", "李导购")
    assert await one_add(world, "wmKnown", 1, adds(world, "wmKnown", guide)) == (True, True)
    if not still_friends:
        await world.driver.customer_deletes_guide("wmKnown", guide)
    assert await one_add(world, "wmKnown", 2, adds(world, "wmKnown", "guide2")) == (False, False)


@pytest.mark.parametrize(("first_bound_at", "bound_at", "first"), [
    (None, None, True),  # never bound, this add not bound yet
    (None, AT, True),  # a customer row without a binding time (imported)
    (AT, AT, True),  # this add's binding is the first one
    (AT, None, False),  # bound before, this add not bound yet
    (AT, AT + dt.timedelta(seconds=1), False),  # bound before this add's binding
])
def test_the_rule(first_bound_at, bound_at, first):
    assert is_first_add(first_bound_at, bound_at) is first
