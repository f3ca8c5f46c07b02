"""A store manager signed in to the console sees and changes only their stores, as with a token."""

from __future__ import annotations

from tests.console.conftest import browser_session


async def test_a_store_manager_sees_only_their_stores_customers(sign_in):
    sh = await sign_in("sh")
    answer = await sh.client.get("/api/v1/customers")
    assert answer.status == 200
    assert [c["external_userid"] for c in (await answer.json())["customers"]] == ["wmShanghai"]
    answer = await sh.client.get("/api/v1/customers", params={"store_code": "BJ001"})
    assert (await answer.json())["customers"] == []
    assert (await sh.client.get("/api/v1/customers/wmBeijing")).status == 404
    assert (await sh.client.get("/api/v1/customers/wmShanghai")).status == 200


async def test_a_store_manager_cannot_change_another_store(sign_in):
    sh = await sign_in("sh")
    answer = await sh.client.patch("/api/v1/stores/BJ001", json={"name": "改名"}, headers=sh.headers())
    assert answer.status == 403
    answer = await sh.client.post("/api/v1/guides", json={"userid": "x1", "name": "某人", "store_code": "BJ001"},
                                  headers=sh.headers())
    assert answer.status == 403
    answer = await sh.client.post("/api/v1/guides", json={"userid": "x1", "name": "某人", "store_code": "SH001"},
                                  headers=sh.headers())
    assert answer.status == 201


async def test_a_store_manager_cannot_use_hq_only_endpoints(sign_in):
    sh = await sign_in("sh")
    assert (await sh.client.get("/api/v1/events")).status == 403
    answer = await sh.client.post("/api/v1/stores", json={"code": "X", "name": "X"}, headers=sh.headers())
    assert answer.status == 403


async def test_the_hq_admin_sees_every_stores_customers(sign_in):
    hq = await sign_in("hq")
    answer = await hq.client.get("/api/v1/customers")
    assert sorted(c["external_userid"] for c in (await answer.json())["customers"]) == ["wmBeijing", "wmShanghai"]


async def test_without_a_session_the_api_answers_401(console):
    async with browser_session(console) as anonymous:
        answer = await anonymous.get("/api/v1/customers")
        assert answer.status == 401
