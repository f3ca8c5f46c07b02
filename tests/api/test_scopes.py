"""What each role may see: out of scope looks exactly like not found; a till sees only what it needs."""

from __future__ import annotations

import asyncio

import pytest


@pytest.mark.parametrize("role", ["manager", "guide"])
@pytest.mark.parametrize("query", ["external_userid=wmTheirs", "phone=13900000002", "member_no={theirs}"])
async def test_another_stores_customer_looks_like_an_unknown_one(seeded, role, query):
    client, headers = seeded.client, seeded.auth[role]
    theirs = await client.get("/api/v1/members?" + query.format(**seeded.ids), headers=headers)
    unknown = await client.get("/api/v1/members?phone=13999999999", headers=headers)
    assert (theirs.status, await theirs.json()) == (unknown.status, await unknown.json()) == (200, {"members": []})
    mine = await client.get("/api/v1/members?phone=13900000001", headers=headers)
    assert [m["member_no"] for m in (await mine.json())["members"]] == [seeded.ids["member_no"]]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/customers"), ("GET", "/api/v1/customers/wmMine"),
    ("GET", "/api/v1/members/{member_no}/ledger"), ("GET", "/api/v1/guides"), ("GET", "/api/v1/channels"),
    ("GET", "/api/v1/qrcodes"),
])
async def test_a_till_cannot_list_customers_or_their_history(seeded, method, path):
    response = await seeded.client.request(method, path.format(**seeded.ids), headers=seeded.auth["integration"])
    assert response.status == 403


async def test_a_till_still_finds_members_records_orders_redeems_and_refunds(seeded):
    client, till = seeded.client, seeded.auth["integration"]
    found = await client.get("/api/v1/members?phone=13900000001", headers=till)
    assert (await found.json())["members"][0]["member_no"] == seeded.ids["member_no"]
    redeemed = await client.post(f"/api/v1/coupons/{seeded.ids['coupon']}/redeem", headers=till,
                                 json={"idempotency_key": "till-1", "member_no": seeded.ids["member_no"]})
    assert redeemed.status == 200
    assert (await client.post("/api/v1/orders/O1/refund", headers=till)).status == 200


async def test_concurrent_identical_retries_of_an_order_are_replays(seeded):
    body = {"order_no": "RACE-1", "member_no": seeded.ids["member_no"], "channel": "store", "store_code": "S1",
            "amount_fen": 5000, "paid_at": "2026-11-02T10:00:00+08:00"}

    async def post():
        response = await seeded.client.post("/api/v1/orders", headers=seeded.auth["integration"], json=body)
        return response.status, await response.json()

    answers = await asyncio.gather(*(post() for _ in range(6)))
    assert sorted(status for status, _ in answers) == [200] * 5 + [201], answers
    assert len({answer["points_balance"] for _, answer in answers}) == 1


@pytest.mark.parametrize(("path", "key", "value"), [
    ("/api/v1/guides/g1", "userid", "g1"), ("/api/v1/channels/CH1", "code", "CH1"),
    ("/api/v1/qrcodes/{qrcode}", "code", "{qrcode}"),
])
async def test_one_guide_channel_or_code_by_its_key(seeded, path, key, value):
    response = await seeded.client.get(path.format(**seeded.ids), headers=seeded.auth["hq"])
    assert response.status == 200
    assert (await response.json())[key] == value.format(**seeded.ids)
    missing = await seeded.client.get(path.format(**seeded.ids) + "x", headers=seeded.auth["hq"])
    assert missing.status == 404


async def test_a_manager_sees_no_other_stores_guide(seeded):
    theirs = await seeded.client.get("/api/v1/guides/g2", headers=seeded.auth["manager"])
    unknown = await seeded.client.get("/api/v1/guides/nobody", headers=seeded.auth["manager"])
    assert theirs.status == unknown.status == 404
    assert (await seeded.client.get("/api/v1/guides/g1", headers=seeded.auth["manager"])).status == 200
