"""The audience language: every field filters in SQL, unknown fields are refused by name, the
preview is one query, and customer tags come from WeCom (events and a full resync)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from sqlalchemy import event, select

from bot.customers.models import Customer
from bot.customers.tag_mirror_models import CustomerTag
from bot.members.config import MembersConfig
from bot.members.models import Coupon, CouponTemplate, Member
from bot.storage import utcnow
from sop.audience import Audience, select_audience
from sop.outreach.plan import preview
from tests.conftest import until

NOW = utcnow()
DAY = dt.timedelta(days=1)


def customer(external_userid, guide="ann", store="SH01", **fields):
    values = dict(external_userid=external_userid, name=external_userid, guide_userid=guide, store_code=store,
                  channel_code="direct", status="bound", tags=[], gender=0, bound_at=NOW - 30 * DAY,
                  first_bound_at=NOW - 30 * DAY)
    return Customer(**(values | fields))


def member(external_userid, **fields):
    values = dict(member_no="M" + external_userid, external_userid=external_userid, source="admin",
                  status="active", points_balance=0, purchase_count=0)
    return Member(**(values | fields))


@pytest.fixture
async def people(db):
    """Eight customers, each singled out by one or two fields."""
    async with db.session() as session, session.begin():
        session.add_all([
            customer("wmPlain"),
            customer("wmWoman", gender=2, guide="bo"),
            customer("wmNew", bound_at=NOW - DAY, channel_code="poster"),
            customer("wmGone", status="unbound"),
            customer("wmBeijing", guide="cai", store="BJ01"),
            customer("wmBuyer"), customer("wmRich"), customer("wmBirthday"),
        ])
        session.add_all([
            member("wmBuyer", purchase_count=3, last_purchase_at=NOW - 2 * DAY, first_purchase_at=NOW - 50 * DAY),
            member("wmRich", points_balance=5000, purchase_count=1, last_purchase_at=NOW - 200 * DAY),
            member("wmBirthday", birthday=(NOW + dt.timedelta(hours=8) + 3 * DAY).date().replace(year=1990)),
            member("wmPlain"),
        ])
        session.add(CouponTemplate(code="T10", name="十元", kind="cash", value_fen=1000, valid_days=30))
        await session.flush()
        rich = await session.scalar(select(Member.id).where(Member.external_userid == "wmRich"))
        session.add(Coupon(code="C1", template_code="T10", member_id=rich, source="manual", issue_key="k1",
                           status="issued", valid_from=NOW - DAY, valid_until=NOW + 2 * DAY))
        session.add_all([
            CustomerTag(external_userid="wmPlain", guide_userid="ann", tag_id="t1", tag_name="VIP"),
            CustomerTag(external_userid="wmPlain", guide_userid="ann", tag_id="t2", tag_name="孕妈"),
            CustomerTag(external_userid="wmWoman", guide_userid="bo", tag_id="t1", tag_name="VIP"),
        ])
    return db


async def matching(db, **fields) -> set[str]:
    async with db.session() as session:
        statement = select_audience(Audience(**fields), MembersConfig(_env_file=None), now=NOW,
                                    dialect=session.get_bind().dialect.name)
        return set(await session.scalars(statement))


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, {"wmPlain", "wmWoman", "wmNew", "wmBeijing", "wmBuyer", "wmRich", "wmBirthday"}),
    ({"stores": ["BJ01"]}, {"wmBeijing"}),
    ({"guides": ["bo"]}, {"wmWoman"}),
    ({"channels": ["poster"]}, {"wmNew"}),
    ({"tags_any": ["VIP", "nope"]}, {"wmPlain", "wmWoman"}),
    ({"tags_all": ["VIP", "孕妈"]}, {"wmPlain"}),
    ({"tags_none": ["VIP"], "stores": ["SH01"], "guides": ["ann"]}, {"wmNew", "wmBuyer", "wmRich", "wmBirthday"}),
    ({"stages": ["repeat"]}, {"wmBuyer"}),
    ({"stages": ["new_friend"], "guides": ["bo", "cai"]}, {"wmWoman", "wmBeijing"}),
    ({"gender": "female"}, {"wmWoman"}),
    ({"added_within_days": 7}, {"wmNew"}),
    ({"purchased_within_days": 7}, {"wmBuyer"}),
    ({"no_purchase_for_days": 100, "guides": ["ann"], "tags_none": ["VIP"], "stages": ["first_purchase", "at_risk",
                                                                                         "member"]},
     {"wmRich", "wmBirthday"}),
    ({"points_min": 1000}, {"wmRich"}),
    ({"points_max": 100, "stages": ["member", "repeat"]}, {"wmBuyer", "wmBirthday", "wmPlain"}),
    ({"has_unused_coupon": True}, {"wmRich"}),
    ({"has_unused_coupon": False, "stages": ["at_risk"]}, set()),
    ({"coupon_expires_within_days": 3}, {"wmRich"}),
    ({"coupon_expires_within_days": 1}, set()),
    ({"birthday_within_days": 5}, {"wmBirthday"}),
    ({"birthday_within_days": 1}, set()),
])
async def test_each_field_filters_in_sql(people, fields, expected):
    assert await matching(people, **fields) == expected


def test_unknown_and_malformed_fields_are_refused_by_name():
    with pytest.raises(ValidationError) as unknown:
        Audience.model_validate({"stores": ["SH01"], "store": ["SH01"]})
    assert [e["loc"] for e in unknown.value.errors()] == [("store",)]
    with pytest.raises(ValidationError) as stage:
        Audience.model_validate({"stages": ["vip"]})
    assert stage.value.errors()[0]["loc"][0] == "stages"
    with pytest.raises(ValidationError) as flag:
        Audience.model_validate({"has_unused_coupon": "yes"})
    assert flag.value.errors()[0]["loc"] == ("has_unused_coupon",)
    with pytest.raises(ValidationError):
        Audience.model_validate({"points_min": 10, "points_max": 5})


async def test_preview_is_one_query_grouped_by_store_guide_and_reason(people, outreach_settings):
    statements = []

    def count(conn, cursor, statement, *args):
        if statement.startswith("SELECT"):  # not BEGIN (SQLite) nor SET LOCAL jit (PostgreSQL)
            statements.append(statement)

    event.listen(people.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with people.session() as session:
            rows = await preview(session, Audience(tags_any=["VIP"]), config=outreach_settings,
                                 members=MembersConfig(_env_file=None), now=NOW)
    finally:
        event.remove(people.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert sorted(rows) == [("SH01", "ann", "targeted", 1), ("SH01", "bo", "targeted", 1)]


async def test_preview_api_refuses_an_unknown_field_naming_it(cw):
    answer = await cw.api("POST", "/api/v1/audiences/preview", 400, json={"audience": {"store": ["SH01"]}})
    assert answer["error"]["details"][0]["field"] == "audience.store"


async def test_preview_reports_the_excluded_with_their_reason(cw):
    for external_userid in ("wmP1", "wmP2", "wmP3"):
        await cw.bind(external_userid, "ann")
    await cw.settle()
    await cw.world.driver.customer_deletes_guide("wmP3", "ann")
    await cw.settle()
    answer = await cw.api("POST", "/api/v1/audiences/preview", 200,
                          json={"audience": {"guides": ["ann"]}, "holdout_percent": 50})
    assert answer["excluded"]["not_friend"] == 1
    assert answer["total"] + answer["excluded"]["held_out"] == 2


async def test_tags_follow_wecom_edits_renames_deletes_and_resync(cw):
    await cw.bind("wmT1", "ann")
    await cw.bind("wmT2", "bo")
    await cw.settle()
    vip, mom = cw.emulator.add_corp_tag("VIP"), cw.emulator.add_corp_tag("孕妈")
    driver = cw.world.driver
    await driver.guide_edits_customer_tags("ann", "wmT1", add=[vip.id, mom.id])
    await cw.settle()

    async def names(external_userid):
        async with cw.services.db.session() as session:
            return set(await session.scalars(select(CustomerTag.tag_name).where(
                CustomerTag.external_userid == external_userid)))

    assert await names("wmT1") == {"VIP", "孕妈"}
    preview_vip = await cw.api("POST", "/api/v1/audiences/preview", 200, json={"audience": {"tags_all": ["VIP"]}})
    assert preview_vip["total"] == 1

    cw.emulator.clock.advance(1)  # the same event in the same second is one event (WeCom's retries)
    await driver.guide_edits_customer_tags("ann", "wmT1", remove=[mom.id])
    await cw.settle()
    assert await names("wmT1") == {"VIP"}

    cw.emulator.tags[vip.id].name = "VIP会员"
    await driver.corp_tag_changes(vip.id, "update")
    await cw.settle()
    assert await names("wmT1") == {"VIP会员"}

    await driver.corp_tag_changes(vip.id, "delete")
    await cw.settle()
    assert await names("wmT1") == set()

    # Tags set while no event reached us (or before the mirror existed): the full resync finds them.
    cw.emulator.customers["wmT2"].follows["bo"].tag_ids.add(mom.id)
    await cw.api("POST", "/api/v1/customer-tags/resync", 202, json={})
    await until(lambda: names("wmT2"))
    assert await names("wmT2") == {"孕妈"}
