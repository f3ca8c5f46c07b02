"""A customer's orders and the outreach they received: newest first, paged, scoped like the
customer page (another store's customer answers exactly like an unknown one)."""

from __future__ import annotations

import pytest


async def test_orders_are_the_customers_own_newest_first_with_refunds(crm):
    page = await crm.get("/api/v1/customers/wmCarol/orders")
    rows = [(o["order_no"], o["status"], o["amount_fen"], o["refunded_fen"]) for o in page["items"]]
    # OC2 was recorded by phone (member only), OD1 is another customer's.
    assert rows == [("OC3", "paid", 12800, 0), ("OC2", "refunded", 12800, 12800), ("OC1", "paid", 12800, 0)]
    first = page["items"][0]
    assert (first["store_code"], first["items"], first["points_earned"], first["refunded_at"]) == ("S2", [{"sku": "A1", "qty": 1}], 128, None)
    assert page["items"][1]["refunded_at"] is not None
    assert await crm.get("/api/v1/customers/wmPct/orders") == {"items": []}


async def test_orders_page_by_before_id(crm):
    first = await crm.get("/api/v1/customers/wmCarol/orders", limit=2)
    assert [o["order_no"] for o in first["items"]] == ["OC3", "OC2"]
    rest = await crm.get("/api/v1/customers/wmCarol/orders", limit=2, before_id=first["items"][-1]["id"])
    assert [o["order_no"] for o in rest["items"]] == ["OC1"]


async def test_outreach_lists_campaign_sends_and_sop_steps_newest_first(crm):
    page = await crm.get("/api/v1/customers/wmCarol/outreach")
    rows = [(r["source"], r["name"], r["step_key"], r["status"], r["guide_userid"]) for r in page["items"]]
    assert rows == [
        ("sop", "新客七日", "d3", "waiting", "g2"),  # due tomorrow
        ("campaign", "周年庆", None, "held_out", "g2"),
        ("sop", "新客七日", "d1", "pending", "g2"),  # pushed as a group send: the send's status
        ("campaign", "会员日", None, "pending", "g2"),  # same moment as d1
        ("campaign", "双十一", None, "sent", "g2"),
    ]
    refs = [r["ref"] for r in page["items"]]
    assert refs == ["ONB", str(crm.ids["周年庆"]), "ONB", str(crm.ids["会员日"]), str(crm.ids["双十一"])]
    assert page["items"][1]["reason"] == "holdout"
    assert page["items"][-1]["sent_at"] is not None and page["items"][0]["sent_at"] is None
    assert page["next_before"] is None
    assert [r["source"] for r in (await crm.get("/api/v1/customers/wmDan/outreach"))["items"]] == ["campaign"]
    assert await crm.get("/api/v1/customers/wmAlice/outreach") == {"items": [], "next_before": None}


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_outreach_pages_through_everything_once(crm, limit):
    everything = [r["cursor"] for r in (await crm.get("/api/v1/customers/wmCarol/outreach"))["items"]]
    seen, before = [], None
    while True:
        page = await crm.get("/api/v1/customers/wmCarol/outreach", limit=limit, **({"before": before} if before else {}))
        seen += [r["cursor"] for r in page["items"]]
        assert page["items"][-1]["cursor"] == page["next_before"] or page["next_before"] is None
        if (before := page["next_before"]) is None:
            break
    assert seen == everything


@pytest.mark.parametrize("kind", ["orders", "outreach"])
async def test_another_stores_customer_is_as_unknown_as_a_missing_one(crm, kind):
    theirs = await crm.get(f"/api/v1/customers/wmCarol/{kind}", 404, as_="manager")
    missing = await crm.get(f"/api/v1/customers/wmNobody/{kind}", 404, as_="manager")
    assert theirs["error"]["code"] == missing["error"]["code"] == "unknown_customer"
    assert (await crm.get(f"/api/v1/customers/wmNobody/{kind}", 404))["error"]["code"] == "unknown_customer"
    assert (await crm.get(f"/api/v1/customers/wmAlice/{kind}", as_="manager"))["items"] == []
    await crm.get(f"/api/v1/customers/wmBob/{kind}", 404, as_="guide")  # g1's customer, asked by g2
    await crm.get(f"/api/v1/customers/wmCarol/{kind}", 403, as_="integration")


@pytest.mark.parametrize("path, query, field, status", [
    ("orders", {"limit": "0"}, "limit", 400), ("orders", {"limit": "201"}, "limit", 400),
    ("orders", {"before_id": "-1"}, "before_id", 400), ("orders", {"before": "x"}, "before", 400),
    ("outreach", {"before": "x"}, "before", 400), ("outreach", {"before": "sop-1"}, "before", 400),
    ("outreach", {"before_id": "3"}, "before_id", 400), ("outreach", {"limit": "many"}, "limit", 400),
    ("outreach", {"before": "sop-9999999999999999999-1"}, "before", 422),
])
async def test_bad_history_input_is_a_4xx_naming_the_field(crm, path, query, field, status):
    data = await crm.get(f"/api/v1/customers/wmCarol/{path}", status, **query)
    assert field in str(data["error"]), data
