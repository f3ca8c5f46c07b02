"""Customers for the console's search and customer page, written straight to the database.

S1 (guide g1): wmAlice "Alice Wang" (member, phone 13900000001, no purchase), wmAlicia "Zhou Min"
(not a member), wmBob "王小波" (member, one purchase). S2 (guide g2): wmCarol "张三丰" (member,
phone 13900000003, three purchases, orders and outreach), wmDan "李四" (member, nine purchases,
the last 400 days ago: dormant), wmPct "100%纯棉" (not a member). Ids rise in that order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from bot.api.auth import Role, create_token
from bot.customers.models import Customer
from bot.members.config import MembersConfig
from bot.members.models import Member, Order
from bot.storage import utcnow
from sop.campaigns.models import Campaign
from sop.engine.models import SopItem, SopRun, SopTemplate
from sop.outreach.models import OutreachPlan, OutreachRecipient

NOW = utcnow().replace(microsecond=123456)
CUSTOMERS = [  # external_userid, name, guide, store, member: (phone, purchases, days since last) or None
    ("wmAlice", "Alice Wang", "g1", "S1", ("13900000001", 0, None)),
    ("wmAlicia", "Zhou Min", "g1", "S1", None),
    ("wmBob", "王小波", "g1", "S1", (None, 1, 3)),
    ("wmCarol", "张三丰", "g2", "S2", ("13900000003", 3, 1)),
    ("wmDan", "李四", "g2", "S2", (None, 9, 400)),
    ("wmPct", "100%纯棉", "g2", "S2", None),
]


@dataclass
class Crm:
    client: object
    services: object
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    async def get(self, path: str, expect: int | None = 200, *, as_: str = "hq", **params) -> dict:
        response = await self.client.get(path, params=params,
                                         headers={"Authorization": f"Bearer {self.tokens[as_]}"})
        data = await response.json()
        if expect is not None:
            assert response.status == expect, (response.status, data)
        return data

    async def search(self, as_: str = "hq", **params) -> list[str]:
        page = await self.get("/api/v1/customers", as_=as_, **params)
        assert page["items"] == page["customers"]
        return [row["external_userid"] for row in page["items"]]


async def _seed(db) -> dict[str, int]:
    ids: dict[str, int] = {}
    async with db.session() as session, session.begin():
        for number, (userid, name, guide, store, member) in enumerate(CUSTOMERS, start=1):
            customer = Customer(external_userid=userid, name=name, guide_userid=guide, store_code=store,
                                channel_code="CH1", status="bound", tags=[], bound_at=NOW, first_bound_at=NOW)
            session.add(customer)
            if member:
                phone, purchases, idle = member
                last = NOW - dt.timedelta(days=idle) if idle is not None else None
                session.add(Member(member_no=f"M{number:04d}", external_userid=userid, phone=phone, name=name,
                                   source="admin", purchase_count=purchases, last_purchase_at=last,
                                   first_purchase_at=last))
            await session.flush()
            ids[userid] = customer.id
        carol = await session.scalar(Member.__table__.select().where(Member.external_userid == "wmCarol")
                                     .with_only_columns(Member.id))
        dan = await session.scalar(Member.__table__.select().where(Member.external_userid == "wmDan")
                                   .with_only_columns(Member.id))
        for order_no, userid, member_id, status, days_ago in (
                ("OC1", "wmCarol", carol, "paid", 30), ("OC2", None, carol, "refunded", 20),  # by phone: member only
                ("OD1", "wmDan", dan, "paid", 400), ("OC3", "wmCarol", carol, "paid", 1)):
            paid = NOW - dt.timedelta(days=days_ago)
            session.add(Order(order_no=order_no, request_hash="h", member_id=member_id, external_userid=userid,
                              store_code="S2", guide_userid="g2", attribution="customer", channel="store",
                              amount_fen=12800, items=[{"sku": "A1", "qty": 1}], coupon_codes=[], points_earned=128,
                              status=status, paid_at=paid, created_at=paid,
                              refunded_at=paid + dt.timedelta(days=1) if status == "refunded" else None))
            await session.flush()
            ids[order_no] = (await session.scalar(Order.__table__.select().where(Order.order_no == order_no)
                                                  .with_only_columns(Order.id)))
        await _seed_outreach(session, ids)
    return ids


async def _seed_outreach(session, ids: dict[str, int]) -> None:
    """wmCarol: campaigns 双十一 (sent, day -10), 周年庆 (held out, day -2), 会员日 (pending, day -5, the
    same moment as SOP step d1, pushed and pending); SOP step d3 still waiting (day +1). wmDan: 双十一."""
    t = {day: NOW + dt.timedelta(days=day) for day in (-10, -5, -2, 1)}
    session.add(SopTemplate(code="ONB", name="新客七日", status="active", version=1))
    for name, planned, recipients in (("双十一", t[-10], [("wmCarol", "sent"), ("wmDan", "sent")]),
                                      ("周年庆", t[-2], [("wmCarol", "held_out")]),
                                      ("会员日", t[-5], [("wmCarol", "pending")])):
        campaign = Campaign(name=name, status="sent")
        session.add(campaign)
        await session.flush()
        ids[name] = campaign.id
        session.add(OutreachPlan(source=campaign.source, title=name, planned_at=planned, status="sent"))
        for userid, status in recipients:
            session.add(OutreachRecipient(source=campaign.source, customer_id=ids[userid], external_userid=userid,
                                          guide_userid="g2", store_code="S2", status=status,
                                          reason="holdout" if status == "held_out" else None,
                                          sent_at=planned + dt.timedelta(hours=1) if status == "sent" else None))
    item = SopItem(code="ONB", version=1, step_key="d1", slot=t[-5].date().isoformat(), guide_userid="g2",
                   store_code="S2", reach="group_send", status="pushed", customers=1, due_at=t[-5],
                   deadline_at=t[-5] + dt.timedelta(days=1))
    session.add(item)
    await session.flush()
    item.source = f"sop:{item.id}"
    session.add(OutreachRecipient(source=item.source, customer_id=ids["wmCarol"], external_userid="wmCarol",
                                  guide_userid="g2", store_code="S2", status="pending"))
    for step_key, due, status, item_id in (("d1", t[-5], "sent", item.id), ("d3", t[1], "waiting", None)):
        session.add(SopRun(enrolment_id=1, code="ONB", version=1, step_key=step_key, due_at=due, status=status,
                           item_id=item_id, external_userid="wmCarol", guide_userid="g2", store_code="S2"))


@pytest.fixture
async def crm(aiohttp_client, make_settings) -> Crm:
    from bot.app import create_app
    from bot.services import SERVICES

    app = create_app(make_settings(), run_jobs=False, configs=[MembersConfig(_env_file=None)])
    client = await aiohttp_client(app)
    services = client.app[SERVICES]
    crm = Crm(client, services)
    db = services.db
    crm.tokens = {
        "hq": await create_token(db, Role.HQ_ADMIN),
        "manager": await create_token(db, Role.STORE_MANAGER, store_codes=["S1"]),
        "guide": await create_token(db, Role.GUIDE, guide_userid="g2"),
        "integration": await create_token(db, Role.INTEGRATION),
    }
    crm.ids = await _seed(db)
    return crm
