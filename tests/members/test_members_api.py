"""Members through the admin API: creation by an integration, lookup scoped by role, HQ adjustments
with an audit entry, merges that keep history, lifecycle stages and the audience filter."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.customers.models import Customer
from bot.members import lifecycle
from bot.members.config import MembersConfig
from bot.members.models import Member, MemberAudit
from bot.services import SERVICES
from sop.audience import AudienceFilter, select_audience
from tests.members.conftest import days_ago, give_points, tokens


@pytest.fixture
async def api(aiohttp_client, settings, members_cfg):
    client = await aiohttp_client(create_app(settings, run_jobs=False, configs=[members_cfg]))
    client.db = client.app[SERVICES].db
    client.auth = await tokens(client.db)
    return client


async def create(api, role: str = "integration", **body):
    response = await api.post("/api/v1/members", json=body, headers=api.auth[role])
    return response.status, await response.json()


async def test_an_integration_creates_a_member_once_per_identity(api, members_cfg):
    members_cfg.join_bonus_points = 100
    status, first = await create(api, external_userid="wm-1", phone="13800138000", name="张三", birthday="1990-02-03")
    assert status == 201 and first["created"] and first["points_balance"] == 100 and first["stage"] == "member"
    status, again = await create(api, phone="13800138000", unionid="u-1")
    assert not again["created"] and again["member_no"] == first["member_no"] and again["unionid"] == "u-1"


@pytest.mark.parametrize("body", [{}, {"phone": "1380013800"}, {"phone": "13800138000", "birthday": "1990-13-01"},
                                  {"external_userid": "wm", "colour": "red"}])
async def test_bad_member_bodies_are_400(api, body):
    status, answer = await create(api, **body)
    assert status == 400 and answer["error"]["code"] == "invalid_request"


async def test_a_referral_credits_the_referrer(api, members_cfg):
    _, referrer = await create(api, phone="13800000001")
    status, _ = await create(api, phone="13800000002", referrer_member_no=referrer["member_no"])
    assert status == 201
    ledger = await (await api.get(f"/api/v1/members/{referrer['member_no']}/ledger", headers=api.auth["hq"])).json()
    assert ledger["balance"] == members_cfg.referral_bonus_points and ledger["entries"][0]["kind"] == "earn"
    status, unknown = await create(api, phone="13800000003", referrer_member_no="M0")
    assert status == 404 and unknown["error"]["code"] == "referrer_not_found"


async def test_guides_and_managers_see_only_their_customers(api):
    async with api.db.session() as session, session.begin():
        session.add_all([Customer(external_userid="wm-mine", guide_userid="g1", store_code="S1", tags=[]),
                         Customer(external_userid="wm-other", guide_userid="g2", store_code="S2", tags=[])])
    _, mine = await create(api, external_userid="wm-mine")
    _, other = await create(api, external_userid="wm-other")
    for role, visible in (("guide", mine), ("manager", mine)):
        assert (await api.get(f"/api/v1/members/{visible['member_no']}", headers=api.auth[role])).status == 200
        hidden = await api.get(f"/api/v1/members/{other['member_no']}", headers=api.auth[role])
        assert hidden.status == 404
    found = await (await api.get("/api/v1/members?external_userid=wm-other", headers=api.auth["hq"])).json()
    assert [m["member_no"] for m in found["members"]] == [other["member_no"]]
    assert (await api.get("/api/v1/members", headers=api.auth["hq"])).status == 422  # valid query, no criterion


async def test_hq_adjustments_are_audited_idempotent_and_never_go_negative(api):
    _, member = await create(api, phone="13800138009")
    url = f"/api/v1/members/{member['member_no']}/points/adjustments"
    body = {"points": 50, "reason": "客诉补偿", "idempotency_key": "case-1"}
    first = await api.post(url, json=body, headers=api.auth["hq"])
    assert first.status == 201 and (await first.json())["balance"] == 50
    assert (await (await api.post(url, json=body, headers=api.auth["hq"])).json())["balance"] == 50
    too_much = await api.post(url, json={"points": -51, "reason": "扣减", "idempotency_key": "case-2"},
                              headers=api.auth["hq"])
    assert too_much.status == 409 and (await too_much.json())["error"]["code"] == "insufficient_points"
    for bad in ({"points": 0, "reason": "x", "idempotency_key": "z"}, {"points": "10", "reason": "x", "idempotency_key": "z"},
                {"points": 1.5, "reason": "x", "idempotency_key": "z"}, {"points": 5, "reason": "", "idempotency_key": "z"}):
        assert (await api.post(url, json=bad, headers=api.auth["hq"])).status == 400
    assert (await api.post(url, json=body, headers=api.auth["manager"])).status == 403
    async with api.db.session() as session:
        audits = (await session.scalars(select(MemberAudit))).all()
    assert [(a.action, a.details["points"], a.details["reason"]) for a in audits] == [("points_adjust", 50, "客诉补偿")]


async def test_a_merge_moves_points_coupons_and_identities_and_keeps_history(api, members_cfg):
    _, keep = await create(api, phone="13811111111")
    _, gone = await create(api, external_userid="wm-dup", unionid="u-dup")
    async with api.db.session() as session:
        gone_id = (await session.scalar(select(Member).where(Member.member_no == gone["member_no"]))).id
    await give_points(api.db, gone_id, 70, "gone-earn")
    merged = await api.post("/api/v1/members/merge", headers=api.auth["hq"],
                            json={"keep_member_no": keep["member_no"], "merge_member_no": gone["member_no"]})
    body = await merged.json()
    assert merged.status == 200 and body["points_balance"] == 70 and body["external_userid"] == "wm-dup"
    via_old = await (await api.get("/api/v1/members?unionid=u-dup", headers=api.auth["hq"])).json()
    assert via_old["members"][0]["member_no"] == keep["member_no"]
    ledger = await (await api.get(f"/api/v1/members/{keep['member_no']}/ledger", headers=api.auth["hq"])).json()
    assert sorted(e["kind"] for e in ledger["entries"]) == ["earn", "merge", "merge"]
    again = await api.post("/api/v1/members/merge", headers=api.auth["hq"],
                           json={"keep_member_no": keep["member_no"], "merge_member_no": gone["member_no"]})
    assert again.status == 409


async def test_lifecycle_stages_and_the_audience_filter(api, members_cfg):
    async with api.db.session() as session, session.begin():
        for name, guide in (("wm-friend", "g1"), ("wm-member", "g1"), ("wm-loyal", "g1"), ("wm-idle", "g2")):
            session.add(Customer(external_userid=name, guide_userid=guide, store_code="S1", tags=[]))
    for name in ("wm-member", "wm-loyal", "wm-idle"):
        await create(api, external_userid=name)
    async with api.db.session() as session, session.begin():
        loyal = await session.scalar(select(Member).where(Member.external_userid == "wm-loyal"))
        loyal.purchase_count, loyal.last_purchase_at = 9, days_ago(3)
        idle = await session.scalar(select(Member).where(Member.external_userid == "wm-idle"))
        idle.purchase_count, idle.last_purchase_at = 3, days_ago(301)
        assert lifecycle.stage_of(loyal, members_cfg) == "loyal" and lifecycle.stage_of(idle, members_cfg) == "dormant"
        assert await lifecycle.refresh_idle_stages(session, members_cfg) == 2

    async def audience(**criteria) -> set[str]:
        async with api.db.session() as session:
            return set(await session.scalars(select_audience(AudienceFilter(**criteria), members_cfg)))

    assert await audience(stages=["new_friend"]) == {"wm-friend"}
    assert await audience(stages=["loyal", "dormant"]) == {"wm-loyal", "wm-idle"}
    assert await audience(stages=["member", "dormant"], guide_userids=["g1"]) == {"wm-member"}
    with pytest.raises(ValueError, match="unknown stage"):
        AudienceFilter(stages=["vip"])


def test_the_default_members_config_is_sane():
    config = MembersConfig(_env_file=None)
    assert config.welcome_coupon_valid_days == 7 and config.dormant_days == 300
