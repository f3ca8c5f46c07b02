"""A guide whose WeCom account is invalid (errcode 40003 on add_contact_way) never strands a customer:
the store's other guides, its backup, the next store, the fallback store and the online guide are
tried first; only when nobody can be reached is there an error, and it offers the way out."""

from __future__ import annotations

import pytest

from bot.wecom.client import WeComAPIError
from tests.landing.conftest import CUSTOMER_GCJ, FAR_AWAY, GUIDES


def contact_way_errcodes(landing) -> list[tuple[str, int]]:
    return [(call["body"]["user"][0], call["errcode"]) for call in landing.emulator.calls
            if call["path"].endswith("externalcontact/add_contact_way")]


async def locate(landing, code, point=CUSTOMER_GCJ):
    return await landing.post(code, "locate", {"lat": point[0], "lng": point[1], "coord_system": "gcj02"})


async def test_the_emulator_refuses_a_contact_way_for_an_unknown_or_departed_member(landing):
    landing.emulator.add_member("gone", resigned=True)
    for userid in ("stranger", "gone"):
        with pytest.raises(WeComAPIError) as refused:
            await landing.services.wecom.externalcontact.add_contact_way(type=1, scene=2, user=[userid])
        assert refused.value.errcode == 40003 and "invalid userid" in refused.value.errmsg


async def test_the_stores_next_guide_takes_over_and_the_broken_account_is_not_asked_again(landing):
    code = await landing.seed(members=["bo", "cai", "dan"], guide_rule="fixed")  # ann is not a member
    status, offer = await locate(landing, code)
    assert status == 200, offer
    assert (offer["decision"], offer["store"]["code"], offer["guide"]["userid"]) == ("nearest", "SH001", "bo")
    assert offer["qr_code"]
    assert contact_way_errcodes(landing) == [("ann", 40003), ("bo", 0)]
    status, again = await locate(landing, code)
    assert status == 200 and again["guide"]["userid"] == "bo"
    assert len(contact_way_errcodes(landing)) == 2  # ann is passed over without another WeCom call
    rows = await landing.funnel()
    assert [(r.step, r.guide_userid, r.details["decision"]) for r in rows] == [
        ("locate", "bo", "nearest"), ("locate", "bo", "nearest")]


async def test_the_backup_guide_takes_over_when_every_regular_guide_is_refused(landing):
    guides = [*GUIDES, {"userid": "bea", "name": "贝贝", "store_code": "SH001", "is_backup": True}]
    code = await landing.seed(guides=guides, members=["bea", "cai", "dan"])
    status, offer = await locate(landing, code)
    assert status == 200, offer
    assert (offer["store"]["code"], offer["guide"]) == ("SH001", {"userid": "bea", "name": "贝贝",
                                                                   "assigned_by": "backup"})


async def test_the_next_store_then_the_fallback_store_then_the_online_guide(landing):
    code = await landing.seed(members=["cai", "dan"], fallback={"store_code": "BJ001"})
    status, offer = await locate(landing, code)
    assert status == 200 and (offer["decision"], offer["guide"]["userid"]) == ("next_nearest", "cai"), offer

    landing.emulator.members.pop("dan")  # the fallback store's only guide leaves WeCom
    status, offer = await locate(landing, code, FAR_AWAY)
    assert status == 503 and offer["error"]["code"] == "guide_unreachable"

    await landing.api("PATCH", f"/api/v1/qrcodes/{code}", 200,
                      json={"fallback": {"store_code": "BJ001", "guide_userid": "cai"}})
    status, offer = await locate(landing, code, FAR_AWAY)
    assert status == 200 and (offer["decision"], offer["guide"]["userid"]) == ("fallback_guide", "cai"), offer


async def test_when_nobody_can_be_reached_the_error_offers_another_store_and_the_online_guide(landing):
    code = await landing.seed(members=["dan"], fallback={"guide_userid": "ann"})
    status, data = await locate(landing, code)
    assert status == 503 and data["error"]["code"] == "guide_unreachable"
    assert "换一家门店" in data["error"]["message"] and "联系在线导购" in data["error"]["message"]
    assert {userid for userid, _ in contact_way_errcodes(landing)} == {"ann", "bo", "cai"}
    rows = await landing.funnel()
    assert [(r.step, r.guide_userid, r.details["decision"]) for r in rows] == [("locate", None, "guide_unreachable")]

    status, data = await landing.post(code, "choose", {"store_code": "SH002"})
    assert status == 503 and data["error"]["code"] == "guide_unreachable"
    status, offer = await landing.post(code, "choose", {"store_code": "BJ001"})  # 换一家门店 works
    assert status == 200 and offer["guide"]["userid"] == "dan"
