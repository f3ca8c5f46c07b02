"""The engine with a controlled clock: each trigger, each exit condition, `when`, the window and
quiet hours, the shared frequency cap, downtime catch-up, and two workers ticking at once."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

from sqlalchemy import func, select, update

from bot.kv import open_store
from bot.members.models import Coupon, Member
from bot.storage import Database
from sop.engine.models import SopEnrolment
from sop.engine.tick import run_tick
from sop.outreach.models import OutreachLedger, OutreachRecipient
from tests.sop.conftest import local, onboarding

NOW = dt.datetime.now


def one_step(code: str, trigger: dict, step: dict, **extra) -> dict:
    base = {"key": "s1", "reach": "guide_task", "content": {"text": "{customer_name}您好"}}
    return {"code": code, "name": code, "trigger": trigger, "steps": [{**base, **step}], **extra}


async def member_of(sw, external_userid: str) -> Member:
    async with sw.services.db.session() as session:
        return await session.scalar(select(Member).where(Member.external_userid == external_userid))


async def set_member(sw, external_userid: str, **values) -> None:
    async with sw.services.db.session() as session, session.begin():
        await session.execute(update(Member).where(Member.external_userid == external_userid).values(**values))


async def enrolled(sw, code: str) -> dict[str, str]:
    async with sw.services.db.session() as session:
        rows = (await session.execute(select(SopEnrolment.external_userid, SopEnrolment.trigger_key)
                                      .where(SopEnrolment.code == code))).all()
    return {external_userid: key for external_userid, key in rows}


async def test_first_purchase_and_purchase_enrol_per_order(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=one_step("visit", {"event": "first_purchase"},
                                                            {"after": {"days": 3}, "at": "19:00"}))
    await sw.api("POST", "/api/v1/sops", 201, json=one_step("again", {"event": "purchase"},
                                                            {"after": {"days": 1}, "at": "12:00"}))
    await sw.bind("wmA1", "ann")
    await sw.bind("wmA2", "ann")
    paid = NOW(dt.UTC) + dt.timedelta(minutes=1)
    await sw.order("A1-1", "wmA1", paid)
    await sw.order("A1-2", "wmA1", paid + dt.timedelta(minutes=1))
    await sw.tick(paid + dt.timedelta(minutes=5))
    assert await enrolled(sw, "visit") == {"wmA1": "first_purchase"}
    async with sw.services.db.session() as session:
        keys = sorted((await session.scalars(select(SopEnrolment.trigger_key).where(SopEnrolment.code == "again"))).all())
    assert keys == ["order:A1-1", "order:A1-2"]
    await sw.tick(local(3, "19:00", paid))
    assert [(item.code, item.customers) for item in await sw.items("visit")] == [("visit", 1)]


async def test_coupon_expiring_enrols_days_before_and_coupon_redeemed_exits(sw):
    document = one_step("expiry", {"event": "coupon_expiring", "days_before": 3},
                        {"after": {"days": 0}, "at": "15:00", "content": {"text": "{customer_name}，{coupon_name}将于{coupon_expires}到期"}},
                        exit_on=["coupon_redeemed"])
    await sw.api("POST", "/api/v1/sops", 201, json=document)
    await sw.bind("wmA1", "ann")
    await sw.bind("wmA2", "ann")
    until = local(5, "12:00")
    async with sw.services.db.session() as session, session.begin():
        await session.execute(update(Coupon).values(valid_until=until))
    assert (await sw.tick(local(1, "15:00"))).enrolled == 0  # 4 days before: not yet
    await sw.tick(local(2, "14:59"))
    assert sorted(await enrolled(sw, "expiry")) == ["wmA1", "wmA2"]
    member = await member_of(sw, "wmA2")
    async with sw.services.db.session() as session, session.begin():
        await session.execute(update(Coupon).where(Coupon.member_id == member.id)
                              .values(status="redeemed", redeemed_at=local(2, "14:59")))
    await sw.tick(local(2, "15:00"))
    runs = await sw.runs("expiry")
    assert runs[("wmA2", "s1")] == ("exited", "coupon_redeemed")
    assert runs[("wmA1", "s1")][0] == "queued"


async def test_birthday_no_purchase_for_and_schedule_enrol_on_their_day(sw):
    await sw.bind("wmA1", "ann")
    await sw.bind("wmA2", "ann")
    tomorrow = local(1, "12:00").astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    await set_member(sw, "wmA1", birthday=tomorrow.replace(year=1990))
    await set_member(sw, "wmA2", last_purchase_at=NOW(dt.UTC) - dt.timedelta(days=100))
    await sw.api("POST", "/api/v1/sops", 201, json=one_step("bday", {"event": "birthday", "days_before": 1},
                                                            {"after": {"days": 0}, "at": "10:00"}))
    await sw.api("POST", "/api/v1/sops", 201, json=one_step("recall", {"event": "no_purchase_for", "days": 90},
                                                            {"after": {"days": 0}, "reach": "guide_push",
                                                             "content": {"text": "好久不见"}}))
    weekday = local(2, "12:00").astimezone(dt.timezone(dt.timedelta(hours=8))).isoweekday()
    await sw.api("POST", "/api/v1/sops", 201, json=one_step("weekly", {"event": "schedule", "weekdays": [weekday]},
                                                            {"after": {"days": 0}, "at": "10:00", "reach": "group_send",
                                                             "content": {"text": "周末上新"}}))
    await sw.tick(local(0, "10:00") if NOW(dt.UTC) < local(0, "10:00") else local(1, "09:00"))
    assert await enrolled(sw, "bday") == {"wmA1": "birthday:" + str(tomorrow.year)}
    assert list(await enrolled(sw, "recall")) == ["wmA2"]
    assert await enrolled(sw, "weekly") == {}
    await sw.tick(local(2, "10:00"))
    assert sorted(await enrolled(sw, "weekly")) == ["wmA1", "wmA2"]
    assert [sorted(send.tasks["ann"].results) for send in sw.group_sends()] == [["wmA1", "wmA2"]]
    await sw.tick(local(2, "10:05"))  # the same day again: enrolled once per occurrence
    assert len(sw.group_sends()) == 1


async def test_unfriended_and_stage_changed_exit_before_the_step(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=onboarding(exit_on=["unfriended", "stage_changed"]))
    for customer in ("wmA1", "wmA2", "wmA3"):
        await sw.bind(customer, "ann")
    await sw.tick(NOW(dt.UTC))
    await sw.world.driver.customer_deletes_guide("wmA1", "ann")
    await sw.settle()
    await sw.order("A2-1", "wmA2", NOW(dt.UTC) + dt.timedelta(minutes=1))  # member → first_purchase
    await sw.tick(local(1, "10:00"))
    runs = await sw.runs()
    assert runs[("wmA1", "d1")] == ("exited", "unfriended")
    assert runs[("wmA2", "d1")] == ("exited", "stage_changed")
    assert runs[("wmA2", "d6")] == ("exited", "stage_changed")  # a later step never goes out
    assert [sorted(send.tasks["ann"].results) for send in sw.group_sends()] == [["wmA3"]]


async def test_quiet_hours_wait_for_the_window_and_downtime_past_it_is_skipped_with_the_reason(sw):
    document = onboarding()
    document["steps"][0]["at"] = "07:00"  # before the 09:00 window
    await sw.api("POST", "/api/v1/sops", 201, json=document)
    await sw.bind("wmA1", "ann")
    await sw.tick(NOW(dt.UTC))
    await sw.tick(local(1, "07:00"))
    assert sw.group_sends() == []  # never before 09:00
    await sw.tick(local(1, "09:00"))
    assert len(sw.group_sends()) == 1
    # Down from before d3 (19:30) until after its window closed (21:00): skipped, not sent at night.
    await sw.tick(local(3, "21:01"))
    runs = await sw.runs()
    assert runs[("wmA1", "d3")][0] == "skipped"
    assert runs[("wmA1", "d3")][1] == f"missed_window:{local(3, '21:00').isoformat()}"


async def test_downtime_inside_the_window_catches_up_in_one_send_per_guide(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=onboarding())
    for customer in ("wmA1", "wmA2"):
        await sw.bind(customer, "ann")
    await sw.bind("wmB1", "bo")
    await sw.tick(NOW(dt.UTC))
    report = await sw.tick(local(1, "20:30"))  # down since before 10:00, back before 21:00
    assert report.items == 2
    assert sorted((send.creator, len(send.tasks[send.creator].results)) for send in sw.group_sends()) == [("ann", 2), ("bo", 1)]


async def test_the_frequency_cap_is_shared_with_campaigns(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=onboarding())
    for customer in ("wmA1", "wmA2"):
        await sw.bind(customer, "ann")
    await sw.tick(NOW(dt.UTC))
    async with sw.services.db.session() as session, session.begin():  # a campaign reached wmA1 this morning
        session.add(OutreachLedger(external_userid="wmA1", source="campaign:1", at=local(1, "08:00")))
    await sw.tick(local(1, "10:00"))
    assert (await sw.runs())[("wmA1", "d1")] == ("skipped", "over_cap")
    assert [sorted(send.tasks["ann"].results) for send in sw.group_sends()] == [["wmA2"]]


async def test_two_workers_ticking_at_once_send_each_step_once(sw, database_url, redis_url):
    await sw.api("POST", "/api/v1/sops", 201, json=onboarding())
    for customer, guide in (("wmA1", "ann"), ("wmA2", "ann"), ("wmB1", "bo"), ("wmC1", "cai")):
        await sw.bind(customer, guide)
    first = sw.services
    settings = first.settings
    second_db = Database(settings.database_url)
    # A second worker: its own connection pool, and (on Redis) its own client of the same locks.
    second_kv = open_store(settings.redis_url, settings.redis_key_prefix) if settings.redis_url else first.kv
    second = dataclasses.replace(first, db=second_db, kv=second_kv, runner=None)
    try:
        for at in (NOW(dt.UTC), local(1, "10:00"), local(1, "10:00"), local(1, "10:01")):
            await asyncio.gather(run_tick(first, at), run_tick(second, at))
        await sw.settle()
    finally:
        await second_db.dispose()
        if second_kv is not first.kv:
            await second_kv.close()
    sends = sw.group_sends()
    assert sorted(send.creator for send in sends) == ["ann", "bo", "cai"]
    async with first.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(SopEnrolment)) == 4
        recipients = (await session.scalars(select(OutreachRecipient.external_userid))).all()
    assert sorted(recipients) == ["wmA1", "wmA2", "wmB1", "wmC1"]


async def test_a_holdout_keeps_the_same_customers_out_of_every_step(sw):
    from bot.customers.models import Customer
    from sop.engine.outreach_adapter import held_out

    document = onboarding(holdout_percent=50)
    document["steps"][1].pop("when")
    document["steps"][1]["reach"] = "group_send"
    await sw.api("POST", "/api/v1/sops", 201, json=document)
    customers = [f"wmA{i}" for i in range(8)]
    for customer in customers:
        await sw.bind(customer, "ann")
    async with sw.services.db.session() as session:
        ids = dict((await session.execute(select(Customer.external_userid, Customer.id))).all())
    expected = sorted(c for c in customers if held_out(ids[c], "sop:onboarding", 50))
    assert 0 < len(expected) < len(customers)  # the draw splits these eight
    await sw.tick(NOW(dt.UTC))
    await sw.tick(local(1, "10:00"))
    await sw.tick(local(3, "19:30"))
    runs = await sw.runs()
    for step in ("d1", "d3"):
        assert sorted(c for c in customers if runs[(c, step)] == ("skipped", "held_out")) == expected
    reached = sorted(c for send in sw.group_sends() for c in send.tasks["ann"].results)
    assert reached == sorted(2 * sorted(set(customers) - set(expected)))  # d1 and d3
    stats = await sw.api("GET", "/api/v1/stats/sop?code=onboarding", 200)
    assert [row["held_out"] for row in stats["steps"]][:2] == [len(expected), len(expected)]
