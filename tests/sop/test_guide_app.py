"""Guides in the WeCom app: the morning card (one per guide, only with pending work), its push
button (the group send, then update_template_card), items that are not theirs, 「完成情况」,
the menu; and the authoring tools (preview, dry run) and completion stats."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.wecom.client import WeComAPIError
from sop.engine.cards import update_card
from sop.engine.tick import push_item
from sop.outreach.models import OutreachPlan
from tests.sop.conftest import ONBOARDING, local


async def onboarding_at_d3(sw) -> None:
    await sw.api("POST", "/api/v1/sops", 201, json=ONBOARDING)
    await sw.bind("wmA1", "ann")
    await sw.bind("wmB1", "bo")
    await sw.tick(dt.datetime.now(dt.UTC))
    await sw.tick(local(3, "19:30"))  # d1 missed (skipped), d3 waits in each guide's list


def cards(sw, userid: str) -> list[dict]:
    return [m["template_card"] for m in sw.emulator.outbox
            if m["channel"] == "app" and m["to"] == userid and m.get("msgtype") == "template_card"]


async def test_one_morning_card_per_guide_and_its_button_pushes_and_updates_the_card(sw):
    await onboarding_at_d3(sw)
    assert cards(sw, "ann") == []  # the d3 items appeared at 19:30: the card waits for the morning
    await sw.tick(local(4, "09:00"))
    await sw.tick(local(4, "09:01"))  # the same morning: no second card
    await sw.tick(local(3, "20:00"))  # nor ever in the evening
    assert len(cards(sw, "ann")) == len(cards(sw, "bo")) == 1 and cards(sw, "cai") == []
    card = cards(sw, "ann")[0]
    assert card["card_type"] == "button_interaction" and "新好友7天培育·d3（1位）" in card["sub_title_text"]
    [button] = card["button_list"]
    tapped = await sw.world.driver.guide_taps_card_button("ann", card["task_id"], button["key"])
    assert tapped["http_status"] == 200
    await sw.settle()
    [send] = sw.group_sends()
    assert send.creator == "ann" and sorted(send.tasks["ann"].results) == ["wmA1"]
    [update] = [m for m in sw.emulator.outbox if m["channel"] == "app_card_update"]
    assert update["to"] == "ann" and update["button"] == {"replace_name": "已推送"}
    with pytest.raises(WeComAPIError) as refused:  # a ResponseCode is good for one update only
        await update_card(sw.services, "ann", tapped["response_code"], "再次")
    assert refused.value.errcode == 40058
    # The button says it was pushed; no app message beyond the morning card (no text, no notice).
    assert [m.get("msgtype") for m in sw.emulator.outbox if m["channel"] == "app" and m["to"] == "ann"] == ["template_card"]


async def test_a_guide_cannot_push_or_complete_what_is_not_theirs(sw):
    await onboarding_at_d3(sw)
    bo_item = next(item for item in await sw.items() if item.guide_userid == "bo")
    done, reply = await push_item(sw.services, "ann", bo_item.id)
    assert (done, reply) == (False, "没有这项可推送的任务")
    await sw.world.driver.guide_writes_app("cai", "推送 1")
    await sw.world.driver.guide_writes_app("cai", "完成 1")
    await sw.settle()
    assert sw.app_texts("cai") == ["没有第 1 项任务（发送「任务」查看您的任务列表）"] * 2
    assert [item.status for item in await sw.items()] == ["waiting", "waiting"]
    async with sw.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(OutreachPlan)) == 0
    with pytest.raises(ValueError):  # no card was sent to cai with bo's button
        await sw.world.driver.guide_taps_card_button("cai", "sop-digest-bo", f"sop:push:{bo_item.id}")


async def test_menu_lists_tasks_and_progress_counts_what_was_pushed(sw):
    await onboarding_at_d3(sw)
    await sw.world.driver.guide_taps_menu("ann", "sop:tasks")
    await sw.settle()
    assert sw.app_texts("ann")[-1].startswith("1. 新好友7天培育·d3：1 位客户")
    await sw.world.driver.guide_writes_app("ann", "推送 1")
    await sw.settle()
    await sw.world.driver.guide_writes_app("ann", "推送 1")  # nothing left to push
    await sw.settle()
    assert sw.app_texts("ann")[-1].startswith("没有第 1 项任务")
    await sw.world.driver.guide_taps_menu("ann", "sop:progress")
    await sw.settle()
    progress = sw.app_texts("ann")[-1]
    assert "推送任务：已推送 1 / 共 1" in progress and "群发任务：已确认发送 0 / 共 1" in progress


async def test_preview_dry_run_and_stats_by_store(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=ONBOARDING)
    await sw.bind("wmA1", "ann")
    await sw.bind("wmC1", "cai")
    preview = await sw.api("POST", "/api/v1/sops/onboarding/preview", 200,
                           json={"step": "d6", "external_userid": "wmA1"})
    assert preview["text"] == "客户wmA1您好，新人券明天到期啦" and preview["reach"] == "guide_task"
    d1 = await sw.api("POST", "/api/v1/sops/onboarding/preview", 200, json={"step": "d1", "external_userid": "wmC1"})
    assert d1["text"].startswith("我是北京一店的蔡晨") and d1["attachments"][0]["link"]["title"] == "真丝连衣裙"
    await sw.api("POST", "/api/v1/sops/onboarding/preview", 422, json={"step": "d9", "external_userid": "wmA1"})

    plan = await sw.api("POST", "/api/v1/sops/onboarding/dry-run", 200, json={"days": 14})
    day1 = local(1, "10:00").astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    assert {"day": day1, "step": "d1", "store": "SH01", "customers": 1} in plan["rows"]
    assert {"day": day1, "step": "d1", "store": "BJ01", "customers": 1} in plan["rows"]
    assert len(plan["rows"]) == 6  # 3 steps × 2 stores, nothing written
    assert (await sw.tick(dt.datetime.now(dt.UTC))).enrolled == 2

    await sw.tick(local(1, "10:00"))
    stats = await sw.api("GET", "/api/v1/stats/sop?code=onboarding&group_by=store", 200, as_="sh_manager")
    assert [(row["step"], row["store"], row["pushed"]) for row in stats["steps"]] == [("d1", "SH01", 1)]
    # By guide or in total, a store manager sees only their own store's runs.
    by_guide = await sw.api("GET", "/api/v1/stats/sop?code=onboarding&group_by=guide", 200, as_="sh_manager")
    assert [(row["step"], row["guide"], row["pushed"]) for row in by_guide["steps"]] == [("d1", "ann", 1)]
    total = await sw.api("GET", "/api/v1/stats/sop?code=onboarding", 200, as_="sh_manager")
    everyone = await sw.api("GET", "/api/v1/stats/sop?code=onboarding", 200)
    d1 = [{row["step"]: row["due"] for row in stats["steps"]}["d1"] for stats in (total, everyone)]
    assert d1 == [1, 2]  # the manager's one customer of SH01; HQ's two
    await sw.api("GET", "/api/v1/stats/sop?code=nope", 404)


async def test_a_push_item_not_pushed_two_days_after_its_window_leaves_the_list_with_the_reason(sw):
    await onboarding_at_d3(sw)
    await sw.tick(local(5, "21:00"))
    assert [item.status for item in await sw.items()] == ["waiting", "waiting"]  # two days' grace
    await sw.tick(local(5, "21:01"))
    assert [item.status for item in await sw.items()] == ["expired", "expired"]
    assert (await sw.runs())[("wmA1", "d3")] == ("skipped", "not_pushed")
    await sw.world.driver.guide_writes_app("ann", "任务")
    await sw.settle()
    assert sw.app_texts("ann")[-1] == "今天没有待处理的SOP任务。"
