"""The issue's onboarding playbook end to end through the emulator: add → welcome → d1 group send
→ d3 only for customers whose coupon is unused, pushed by the guide from the app → a purchase
exits before d6 → the d6 one-to-one task listed and completed by the guide."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from bot.emulator.api_groupmsg import confirm_group_send
from bot.members.models import Coupon, Member
from tests.sop.conftest import ONBOARDING, local


async def redeem_welcome_coupon(sw, external_userid: str) -> None:
    async with sw.services.db.session() as session, session.begin():
        member_id = await session.scalar(select(Member.id).where(Member.external_userid == external_userid))
        await session.execute(update(Coupon).where(Coupon.member_id == member_id)
                              .values(status="redeemed", redeemed_at=dt.datetime.now(dt.UTC)))


async def test_onboarding_playbook_runs_from_friend_added_to_purchase_exit(sw):
    created = await sw.api("POST", "/api/v1/sops", 201, json=ONBOARDING)  # the document as written
    assert (created["code"], created["version"], created["status"]) == ("onboarding", 1, "active")

    for external_userid, guide in (("wmA1", "ann"), ("wmA2", "ann"), ("wmB1", "bo")):
        await sw.bind(external_userid, guide)
    await sw.bind("wmX1", "ann", channel=None)  # not from the pkg channel: outside the audience
    assert len(sw.emulator.calls_to("externalcontact/send_welcome_msg")) == 4  # the welcome on add

    report = await sw.tick(dt.datetime.now(dt.UTC))
    assert report.enrolled == 3
    assert (await sw.tick(local(1, "09:59"))).items == 0 and sw.group_sends() == []

    await sw.tick(local(1, "10:00"))
    sends = {send.creator: send for send in sw.group_sends()}
    assert sorted(sends) == ["ann", "bo"]
    assert sorted(sends["ann"].tasks["ann"].results) == ["wmA1", "wmA2"]
    assert sends["ann"].text["content"] == "我是上海一店的安娜，有任何穿搭问题随时找我～"
    assert [a["link"]["url"] for a in sends["ann"].attachments] == ["https://shop.example/DRESS-01"]
    assert (await sw.tick(local(1, "10:01"))).items == 0 and len(sw.group_sends()) == 2  # once per slot

    await redeem_welcome_coupon(sw, "wmA2")
    await sw.tick(local(3, "19:30"))
    runs = await sw.runs()
    assert runs[("wmA2", "d3")] == ("skipped", "when_not_met")
    assert runs[("wmA1", "d3")][0] == runs[("wmB1", "d3")][0] == "queued"
    assert len(sw.group_sends()) == 2  # guide_push waits for the guide

    await sw.world.driver.guide_writes_app("ann", "任务")
    await sw.settle()
    assert "1. 新好友7天培育·d3：1 位客户（回复「推送 1」）" in sw.app_texts("ann")[-1]

    await sw.world.driver.guide_writes_app("ann", "推送 99")
    await sw.settle()
    assert sw.app_texts("ann")[-1].startswith("没有第 99 项任务")
    assert [item.status for item in await sw.items()] == ["pushed", "pushed", "waiting", "waiting"]

    await sw.world.driver.guide_writes_app("ann", "推送 1")
    await sw.settle()
    assert "已为 1 位客户创建群发任务" in sw.app_texts("ann")[-1]
    d3 = [send for send in sw.group_sends() if send.text["content"].startswith("您的新人券")]
    assert [(send.creator, sorted(send.tasks["ann"].results)) for send in d3] == [("ann", ["wmA1"])]

    await sw.order("A1-1", "wmA1", local(4, "12:00"))
    await sw.tick(local(6, "19:30"))
    runs = await sw.runs()
    assert runs[("wmA1", "d6")] == ("exited", "purchased")
    assert runs[("wmA2", "d6")][0] == runs[("wmB1", "d6")][0] == "queued"

    await sw.world.driver.guide_writes_app("bo", "今日任务")
    await sw.settle()
    listing = sw.app_texts("bo")[-1]
    # bo never pushed d3: two days after its window it left the list (skipped, not_pushed).
    assert (await sw.runs())[("wmB1", "d3")] == ("skipped", "not_pushed")
    assert listing.startswith("1. 新好友7天培育·d6：1 位客户（回复「完成 1」）") and "客户wmB1您好，新人券明天到期啦" in listing
    await sw.world.driver.guide_writes_app("bo", "完成 1")
    await sw.settle()
    assert sw.app_texts("bo")[-1] == "已完成：1 位客户"
    assert (await sw.runs())[("wmB1", "d6")] == ("done", None)

    for send in sw.group_sends():
        confirm_group_send(sw.emulator, send.msgid)
    stats = await sw.api("GET", "/api/v1/stats/sop?code=onboarding&group_by=guide", 200)
    by = {(row["step"], row["guide"]): row for row in stats["steps"]}
    assert by[("d1", "ann")]["due"] == 2 and by[("d1", "ann")]["pushed"] == 2
    assert by[("d3", "ann")]["pushed"] == 1 and by[("d3", "ann")]["skipped"] == 1
    assert by[("d6", "bo")]["tasks_done"] == 1 and by[("d6", "ann")]["exited"] == 1
