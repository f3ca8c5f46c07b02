"""The triggers the engine tests do not cover yet, each with a controlled clock: member_joined,
coupon_issued, stage_entered (stored and computed stages, never enrolled twice by the nightly
refresh), schedule by dates and month days; and the weekly frequency cap."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.members.models import Coupon, Member
from sop.engine.models import SopEnrolment
from sop.outreach.models import OutreachLedger
from tests.sop.conftest import ZONE, local, onboarding
from tests.sop.test_engine import enrolled, one_step, set_member

NOW = dt.datetime.now


async def test_member_joined_enrols_each_new_member_once_and_its_step_follows_the_join(sw):
    await sw.bind("wmA1", "ann")  # a member before the template: never enrolled
    await sw.api("POST", "/api/v1/sops", 201, json=one_step("joined", {"event": "member_joined"},
                                                            {"after": {"days": 2}, "at": "11:00"}))
    await sw.bind("wmA2", "ann")
    await sw.bind("wmB1", "bo", channel=None)
    await sw.tick(NOW(dt.UTC) + dt.timedelta(minutes=1))
    assert await enrolled(sw, "joined") == {"wmA2": "joined", "wmB1": "joined"}
    assert (await sw.tick(NOW(dt.UTC) + dt.timedelta(minutes=2))).enrolled == 0  # once per member
    await sw.tick(local(2, "10:59"))
    assert await sw.items("joined") == []
    await sw.tick(local(2, "11:00"))
    assert sorted((item.guide_userid, item.customers) for item in await sw.items("joined")) == [("ann", 1), ("bo", 1)]


async def test_coupon_issued_enrols_per_coupon_anchored_at_its_issue(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=one_step("issued", {"event": "coupon_issued"},
                                                            {"after": {"days": 1}, "at": "10:00", "reach": "group_send",
                                                             "content": {"text": "您有一张新券"}}))
    await sw.bind("wmA1", "ann")  # the welcome coupon
    async with sw.services.db.session() as session:
        codes = (await session.scalars(select(Coupon.code).join(Member, Member.id == Coupon.member_id)
                                       .where(Member.external_userid == "wmA1"))).all()
        issued_at = await session.scalar(select(Coupon.issued_at).where(Coupon.code == codes[0]))
    assert len(codes) == 1
    await sw.tick(NOW(dt.UTC) + dt.timedelta(minutes=1))
    assert await enrolled(sw, "issued") == {"wmA1": f"coupon:{codes[0]}"}
    async with sw.services.db.session() as session:
        anchor = await session.scalar(select(SopEnrolment.anchor_at).where(SopEnrolment.code == "issued"))
    assert anchor == issued_at
    await sw.tick(local(1, "09:59", issued_at))
    assert sw.group_sends() == []
    await sw.tick(local(1, "10:00", issued_at))
    assert [sorted(send.tasks["ann"].results) for send in sw.group_sends()] == [["wmA1"]]


async def test_stage_entered_enrols_on_the_stage_and_the_nightly_refresh_never_enrols_twice(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=one_step("first", {"event": "stage_entered", "stage": "first_purchase"},
                                                            {"after": {"days": 1}, "at": "12:00"}))
    await sw.api("POST", "/api/v1/sops", 201, json=one_step("risk", {"event": "stage_entered", "stage": "at_risk"},
                                                            {"after": {"days": 0}, "reach": "guide_push",
                                                             "content": {"text": "好久不见，来店里看看新品吧"}}))
    for customer in ("wmA1", "wmA2", "wmA3"):
        await sw.bind(customer, "ann")
    await sw.order("A1-1", "wmA1", NOW(dt.UTC) + dt.timedelta(minutes=1))  # member → first_purchase
    # wmA2 bought 91 days ago: at risk by the clock, before the nightly refresh stores it.
    await set_member(sw, "wmA2", purchase_count=1, last_purchase_at=NOW(dt.UTC) - dt.timedelta(days=91),
                     first_purchase_at=NOW(dt.UTC) - dt.timedelta(days=91))
    await sw.tick(NOW(dt.UTC) + dt.timedelta(minutes=5))
    assert list(await enrolled(sw, "first")) == ["wmA1"]
    assert list(await enrolled(sw, "risk")) == ["wmA2"]
    # The nightly refresh stores the stage with its own timestamp: no second enrolment.
    await set_member(sw, "wmA2", stage="at_risk", stage_changed_at=NOW(dt.UTC) + dt.timedelta(hours=1))
    assert (await sw.tick(NOW(dt.UTC) + dt.timedelta(hours=2))).enrolled == 0
    await sw.tick(local(1, "12:00"))
    assert [(item.code, item.customers) for item in await sw.items("first")] == [("first", 1)]


async def test_schedule_by_dates_and_month_days_enrols_the_audience_on_those_days_only(sw):
    await sw.bind("wmA1", "ann")
    await sw.bind("wmB1", "bo", channel="shop")
    in_two_days = local(2, "12:00").astimezone(ZONE).date()
    in_four_days = local(4, "12:00").astimezone(ZONE).date()
    await sw.api("POST", "/api/v1/sops", 201, json=one_step(
        "dated", {"event": "schedule", "dates": [in_two_days.isoformat()]},
        {"after": {"days": 0}, "at": "10:00", "reach": "group_send", "content": {"text": "双十二预热"}},
        audience={"channels": ["pkg"]}))
    await sw.api("POST", "/api/v1/sops", 201, json=one_step(
        "monthly", {"event": "schedule", "monthdays": [in_four_days.day]},
        {"after": {"days": 0}, "at": "10:00"}))
    await sw.tick(local(1, "10:00"))
    assert await enrolled(sw, "dated") == {} and await enrolled(sw, "monthly") == {}
    await sw.tick(local(2, "10:00"))
    assert await enrolled(sw, "dated") == {"wmA1": f"schedule:{in_two_days.isoformat()}"}
    assert [sorted(send.tasks["ann"].results) for send in sw.group_sends()] == [["wmA1"]]
    await sw.tick(local(3, "10:00"))
    assert await enrolled(sw, "monthly") == {}
    await sw.tick(local(4, "10:00"))
    assert sorted(await enrolled(sw, "monthly")) == ["wmA1", "wmB1"]
    assert len(sw.group_sends()) == 1  # the dated one is not repeated


async def test_the_weekly_cap_counts_campaign_and_sop_sends_of_the_last_seven_days(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=onboarding())
    for customer in ("wmA1", "wmA2"):
        await sw.bind(customer, "ann")
    await sw.tick(NOW(dt.UTC))
    d1 = local(1, "10:00")
    async with sw.services.db.session() as session, session.begin():
        # wmA1: seven sends on the six days before (the weekly cap of 7), none today.
        session.add_all([OutreachLedger(external_userid="wmA1", source=f"campaign:{n}", at=d1 - dt.timedelta(days=1 + n % 6, hours=1))
                         for n in range(7)])
        # wmA2: seven sends, but the oldest eight days ago: six count.
        session.add_all([OutreachLedger(external_userid="wmA2", source=f"campaign:{n}",
                                        at=d1 - dt.timedelta(days=8 if n == 0 else 1 + n % 6, hours=1))
                         for n in range(7)])
    await sw.tick(d1)
    runs = await sw.runs()
    assert runs[("wmA1", "d1")] == ("skipped", "over_cap")
    assert runs[("wmA2", "d1")] == ("sent", None)
    assert [sorted(send.tasks["ann"].results) for send in sw.group_sends()] == [["wmA2"]]


async def test_a_customer_due_two_sop_steps_in_one_pass_gets_one_under_a_daily_cap_of_one(sw):
    for code in ("first", "second"):
        await sw.api("POST", "/api/v1/sops", 201, json=one_step(code, {"event": "friend_added"}, {
            "after": {"days": 1}, "at": "10:00", "reach": "group_send", "content": {"text": f"{code}"}}))
    await sw.bind("wmA1", "ann")
    await sw.tick(NOW(dt.UTC))
    await sw.tick(local(1, "10:00"))
    outcomes = sorted([(await sw.runs("first"))[("wmA1", "s1")], (await sw.runs("second"))[("wmA1", "s1")]])
    assert outcomes == [("sent", None), ("skipped", "over_cap")]
    assert len(sw.group_sends()) == 1
