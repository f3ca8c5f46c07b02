"""Guides are never flooded (WeCom drops app messages past 30 a minute per member): SOP group
sends send no notice each — the one morning card counts them — and a tapped card answers on the
card, with a text only when the tap was refused."""

from __future__ import annotations

import datetime as dt

from sop.outreach.config import OutreachConfig
from tests.sop.conftest import local
from tests.sop.test_engine import one_step


def app_messages(sw, userid: str) -> list[dict]:
    return [m for m in sw.emulator.outbox if m["channel"] == "app" and m["to"] == userid]


async def test_many_sop_group_sends_message_the_guide_once_in_the_morning(sw):
    sw.services.use_config(OutreachConfig(_env_file=None, cap_per_day=5))
    for n in range(3):
        await sw.api("POST", "/api/v1/sops", 201, json=one_step(f"s{n}", {"event": "friend_added"}, {
            "after": {"days": 1}, "at": f"1{n}:00", "reach": "group_send", "content": {"text": f"第{n}条"}}))
    for customer in ("wmA1", "wmA2"):
        await sw.bind(customer, "ann")
    before = len(app_messages(sw, "ann"))
    await sw.tick(dt.datetime.now(dt.UTC))
    for n in range(3):
        await sw.tick(local(1, f"1{n}:00"))
    assert len(sw.group_sends()) == 3
    assert app_messages(sw, "ann")[before:] == []  # the tasks exist; no notice per task
    await sw.tick(local(2, "09:00"))
    await sw.tick(local(2, "09:01"))
    [card] = app_messages(sw, "ann")[before:]
    assert "3 个群发任务等待您在「客户群发」中确认" in card["template_card"]["sub_title_text"]


async def test_a_refused_card_tap_says_why_in_one_text(sw):
    from tests.sop.test_guide_app import cards, onboarding_at_d3

    await onboarding_at_d3(sw)
    await sw.tick(local(4, "09:00"))
    [card] = cards(sw, "ann")
    await sw.api("POST", "/api/v1/sops/onboarding/pause", 200)
    await sw.world.driver.guide_taps_card_button("ann", card["task_id"], card["button_list"][0]["key"])
    await sw.settle()
    assert [m["msgtype"] for m in app_messages(sw, "ann")] == ["template_card", "text"]
    assert sw.app_texts("ann") == ["该SOP已暂停，暂不能推送"]
    [update] = [m for m in sw.emulator.outbox if m["channel"] == "app_card_update"]
    assert update["button"] == {"replace_name": "未推送"}
    assert sw.group_sends() == []
