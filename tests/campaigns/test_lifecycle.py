"""Life cycle after launch: cancel (in WeCom too), remind (≤ 3 per 24 h), the frequency cap
across campaigns, a scheduled send that never fires early, results synced on a schedule with
cursor paging until the campaign is finished."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from bot.emulator.api_groupmsg import confirm_group_send
from sop.outreach import sync
from tests.campaigns.conftest import CAMPAIGN
from tests.conftest import until


async def bind(cw, guide: str, customers: list[str]) -> None:
    for external_userid in customers:
        await cw.bind(external_userid, guide)
    await cw.settle()


def task_of(cw, guide: str):
    return next(send for send in cw.tasks() if send.creator == guide)


async def test_cancel_stops_unconfirmed_tasks_in_wecom_and_keeps_what_was_delivered(cw):
    await bind(cw, "ann", ["wmA1", "wmA2"])
    await bind(cw, "bo", ["wmB1"])
    campaign_id = await cw.launch()
    confirm_group_send(cw.emulator, task_of(cw, "ann").msgid)
    answer = await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/cancel", 200, json={})
    assert answer == {"id": campaign_id, "status": "cancelled", "cancelled_tasks": 1}
    assert task_of(cw, "bo").cancelled and not task_of(cw, "ann").cancelled
    with pytest.raises(ValueError):
        confirm_group_send(cw.emulator, task_of(cw, "bo").msgid)
    assert [c["msgid"] for c in (call["body"] for call in cw.emulator.calls_to(
        "externalcontact/cancel_groupmsg_send"))] == [task_of(cw, "bo").msgid]
    detail = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}", 200)
    assert detail["status"] == "cancelled"
    assert (detail["counts"]["sent"], detail["counts"]["cancelled"], detail["counts"]["pending"]) == (2, 1, 0)
    await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/cancel", 409, json={})


async def test_cancel_before_launch_sends_nothing(cw):
    await bind(cw, "ann", ["wmA1"])
    created = await cw.create()
    await cw.api("POST", f"/api/v1/campaigns/{created['id']}/approve", 200, json={})
    await cw.api("POST", f"/api/v1/campaigns/{created['id']}/cancel", 200, json={})
    await cw.api("POST", f"/api/v1/campaigns/{created['id']}/launch", 409, json={})
    await cw.settle()
    assert cw.tasks() == []


async def test_remind_reaches_guides_who_have_not_confirmed_at_most_three_times_a_day(cw):
    await bind(cw, "ann", ["wmA1"])
    await bind(cw, "bo", ["wmB1"])
    campaign_id = await cw.launch()
    confirm_group_send(cw.emulator, task_of(cw, "ann").msgid)
    await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/sync", 200, json={})
    for left in (2, 1, 0):
        answer = await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/remind", 200, json={})
        assert answer == {"reminded_tasks": 1, "reminders_left_24h": left}
    answer = await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/remind", 429, json={})
    assert answer["error"]["code"] == "too_many_reminders"
    reminders = [m for m in cw.emulator.outbox if m["channel"] == "reminder"]
    assert [m["to"] for m in reminders] == ["bo", "bo", "bo"]


async def test_frequency_cap_excludes_customers_at_planning_across_campaigns(cw):
    await bind(cw, "ann", ["wmA1", "wmA2"])
    await bind(cw, "cai", ["wmC1"])
    first = await cw.launch()
    second = await cw.launch({**CAMPAIGN, "name": "第二波", "audience": {}})
    adds = cw.emulator.calls_to("externalcontact/add_msg_template")
    assert [call["body"]["sender"] for call in adds] == ["ann", "cai"]
    assert adds[1]["body"]["external_userid"] == ["wmC1"]
    detail = await cw.api("GET", f"/api/v1/campaigns/{second}", 200)
    assert (detail["counts"]["over_cap"], detail["counts"]["pending"], detail["counts"]["sent"]) == (2, 1, 0)
    first_detail = await cw.api("GET", f"/api/v1/campaigns/{first}", 200)
    assert first_detail["counts"]["over_cap"] == 0
    preview = await cw.api("POST", "/api/v1/audiences/preview", 200, json={"audience": {}})
    assert preview["total"] == 0 and preview["excluded"]["over_cap"] == 3


async def test_a_scheduled_campaign_is_sent_at_send_at_and_not_before(cw):
    await bind(cw, "ann", ["wmA1"])
    send_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)  # beyond what settle() waits for
    created = await cw.create({**CAMPAIGN, "send_at": send_at.isoformat()})
    await cw.api("POST", f"/api/v1/campaigns/{created['id']}/approve", 200, json={})
    answer = await cw.api("POST", f"/api/v1/campaigns/{created['id']}/launch", 200, json={})
    assert answer["status"] == "scheduled"
    await cw.settle()
    assert cw.tasks() == []
    await until(cw.tasks, within=30)
    assert time.time() >= send_at.timestamp()

    async def sent():  # the task exists in WeCom a moment before our commit says so
        detail = await cw.api("GET", f"/api/v1/campaigns/{created['id']}", 200)
        return detail["status"] == "sent"

    await until(sent)


async def test_results_are_synced_on_a_schedule_with_cursor_paging_until_finished(cw, outreach_settings, monkeypatch):
    outreach_settings.sync_delay_seconds = 0.2
    monkeypatch.setattr(sync, "PAGE", 2)  # five customers: three pages of results
    customers = ["wmA1", "wmA2", "wmA3", "wmA4", "wmA5"]
    await bind(cw, "ann", customers)
    campaign_id = await cw.launch()
    cw.emulator.customers["wmA5"].follows.pop("ann")  # deleted before the guide confirmed
    confirm_group_send(cw.emulator, task_of(cw, "ann").msgid)

    async def finished():
        detail = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}", 200)
        return detail if detail["status"] == "finished" else None

    detail = await until(finished, within=15)
    assert (detail["counts"]["sent"], detail["counts"]["not_friend"], detail["counts"]["pending"]) == (4, 1, 0)
    result_calls = cw.emulator.calls_to("externalcontact/get_groupmsg_send_result")
    assert len(result_calls) >= 3 and {c["body"].get("cursor") for c in result_calls} >= {None, "2", "4"}


async def test_wecom_results_keep_not_a_friend_over_the_cap_and_sent_apart(cw):
    await bind(cw, "ann", ["wmSent", "wmGone", "wmFull"])
    campaign_id = await cw.launch()
    cw.emulator.customers["wmGone"].follows.pop("ann")  # deleted after the task was made
    month = cw.emulator.month()
    cw.emulator.group_send_ledger[("wmFull", month)] = cw.emulator.group_send_cap_per_month  # WeCom's own cap
    confirm_group_send(cw.emulator, task_of(cw, "ann").msgid)
    detail = await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/sync", 200, json={})
    counts = detail["counts"]
    assert (counts["sent"], counts["not_friend"], counts["over_cap"], counts["pending"]) == (1, 1, 1, 0)
    page = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}/recipients", 200)
    assert {r["external_userid"]: (r["status"], r["reason"]) for r in page["recipients"]} == {
        "wmSent": ("sent", None), "wmGone": ("not_friend", "wecom"), "wmFull": ("over_cap", "wecom")}
    assert [m["to"] for m in cw.emulator.outbox if m["channel"] == "groupmsg"] == ["wmSent"]


async def test_with_wecom_capping_one_a_day_our_plan_never_makes_wecom_refuse(cw):
    cw.emulator.group_send_cap_per_day = 1
    await bind(cw, "ann", ["wmA1", "wmA2"])
    first = await cw.launch()
    confirm_group_send(cw.emulator, task_of(cw, "ann").msgid)
    # A second campaign the same day: our ledger keeps both customers out (1 a day by default)
    # instead of handing WeCom a task it would refuse per customer.
    await bind(cw, "bo", ["wmB1"])
    second = await cw.launch({**CAMPAIGN, "name": "第二波", "audience": {}})
    bo_task = task_of(cw, "bo")
    assert list(next(iter(bo_task.tasks.values())).results) == ["wmB1"]
    confirm_group_send(cw.emulator, bo_task.msgid)
    for campaign_id in (first, second):
        await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/sync", 200, json={})
    detail = await cw.api("GET", f"/api/v1/campaigns/{second}", 200)
    assert (detail["counts"]["sent"], detail["counts"]["over_cap"]) == (1, 2)
    over = await cw.api("GET", f"/api/v1/campaigns/{second}/recipients?status=over_cap", 200)
    assert {r["reason"] for r in over["recipients"]} == {"over_cap"}  # ours, at planning; none from WeCom
    # And WeCom's own daily cap, as the emulator plays it, refuses a second send the same day.
    assert cw.emulator.over_group_send_cap("wmA1") and not cw.emulator.over_group_send_cap("wmNobody")
