"""End to end through the emulator: bind customers in two stores, launch for one store with a
coupon, one task per guide with exactly that guide's customers, guides told, guides confirm,
results synced, an order inside the window counted and one outside not."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.emulator.api_groupmsg import confirm_group_send
from bot.members.models import Coupon
from tests.campaigns.conftest import CAMPAIGN

CUSTOMERS = {"ann": ["wmA1", "wmA2", "wmA3"], "bo": ["wmB1", "wmB2"], "cai": ["wmC1"], "dan": ["wmD1"]}


async def bind_all(cw) -> None:
    for guide, customers in CUSTOMERS.items():
        for external_userid in customers:
            await cw.bind(external_userid, guide)
    await cw.settle()


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


async def test_store_campaign_reaches_each_customer_through_their_own_guide(cw):
    await bind_all(cw)
    preview = await cw.api("POST", "/api/v1/audiences/preview", 200, json={"audience": {"stores": ["SH01"]}})
    assert preview["total"] == 5
    assert {row["code"]: row["count"] for row in preview["by_guide"]} == {"ann": 3, "bo": 2}
    assert preview["by_store"] == [{"code": "SH01", "count": 5}]

    created = await cw.create(CAMPAIGN)  # the example, exactly as written
    campaign_id = created["id"]
    assert created["status"] == "draft"
    await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/approve", 200, json={})
    await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/launch", 200, json={})
    await cw.settle()

    tasks = cw.tasks()
    assert sorted(task.creator for task in tasks) == ["ann", "bo"]
    for task in tasks:
        [(sender, share)] = task.tasks.items()
        assert sender == task.creator
        assert sorted(share.results) == sorted(CUSTOMERS[sender])
        guide_name = {"ann": "安娜", "bo": "薄波"}[sender]
        assert task.text["content"].startswith(f"您好，我是{guide_name}。")

    async with cw.services.db.session() as session:
        coupons = (await session.scalars(select(Coupon).where(Coupon.source == "campaign"))).all()
    assert len(coupons) == 5 and {c.template_code for c in coupons} == {"CARE20"}

    notices = [m for m in cw.emulator.outbox if m["channel"] == "app" and m.get("msgtype") == "template_card"]
    assert sorted(m["to"] for m in notices) == ["ann", "bo"]
    ann_notice = next(m for m in notices if m["to"] == "ann")["template_card"]
    assert "闭店不停业关怀" in ann_notice["main_title"]["title"] and ann_notice["emphasis_content"]["title"] == "3"

    detail = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}", 200)
    assert detail["status"] == "sent"
    assert detail["counts"] | {} == {**detail["counts"], "targeted": 5, "tasks": 2, "pending": 5, "sent": 0,
                                     "guides_confirmed": 0}

    ann_task = next(task for task in tasks if task.creator == "ann")
    confirm_group_send(cw.emulator, ann_task.msgid)
    detail = await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/sync", 200, json={})
    counts = detail["counts"]
    assert (counts["sent"], counts["pending"], counts["guides_confirmed"], counts["not_friend"],
            counts["over_cap"], counts["failed"]) == (3, 2, 1, 0, 0, 0)
    by_guide = {row["code"]: row for row in detail["by_guide"]}
    assert by_guide["ann"]["sent"] == 3 and by_guide["bo"]["pending"] == 2

    received = [m for m in cw.emulator.outbox if m["channel"] == "groupmsg"]
    assert sorted(m["to"] for m in received) == ["wmA1", "wmA2", "wmA3"]

    now = dt.datetime.now(dt.UTC)
    inside = {"order_no": "IN-1", "external_userid": "wmA1", "channel": "online", "amount_fen": 12800,
              "paid_at": iso(now + dt.timedelta(hours=1))}
    before = {"order_no": "OUT-1", "external_userid": "wmA2", "channel": "online", "amount_fen": 5000,
              "paid_at": iso(now - dt.timedelta(days=1))}
    after = {"order_no": "OUT-2", "external_userid": "wmA3", "channel": "online", "amount_fen": 7000,
             "paid_at": iso(now + dt.timedelta(days=8))}
    for order in (inside, before, after):
        await cw.api("POST", "/api/v1/orders", 201, as_="till", json=order)
    detail = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}", 200)
    conversions = detail["conversions"]
    assert (conversions["orders"], conversions["revenue_fen"]) == (1, 12800)
    assert conversions["conversion_rate"] == round(1 / 3, 4)
    assert conversions["holdout_conversion_rate"] is None and conversions["uplift"] is None

    page = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}/recipients?status=sent&limit=2", 200)
    assert [r["status"] for r in page["recipients"]] == ["sent", "sent"] and page["next_after_id"]
    rest = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}/recipients?status=sent&after_id="
                        f"{page['next_after_id']}", 200)
    assert len(rest["recipients"]) == 1 and rest["next_after_id"] is None
    assert all(r["coupon_code"] for r in page["recipients"] + rest["recipients"])
