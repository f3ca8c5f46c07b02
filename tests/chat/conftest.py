"""Seeding the emulated world for the chat and guide-lookup tests."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.customers.models import Customer
from bot.members import coupons, ledger
from bot.members.config import MembersConfig
from bot.members.members import create_member
from bot.members.models import CouponTemplate, KfMessage
from bot.storage import utcnow
from bot.stores.models import Guide, Store

KF = "wkKF0001"
HOURS = {day: ["10:00-22:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def chat_cfg():
    return MembersConfig(_env_file=None, join_bonus_points=0, store_managers={"mgr1": ["S1"]})


@pytest.fixture
def feature_configs(chat_cfg) -> list:
    return [chat_cfg]  # `world`'s service answers by these rules


async def seed_shop(db) -> None:
    """Store S1 with guide g1 (小王), store S2 with guide g2; templates: welcome, a cash coupon, a mall coupon."""
    async with db.session() as session, session.begin():
        session.add_all([
            Store(code="S1", name="静安旗舰店", city="上海", address="南京西路1号", opening_hours=HOURS),
            Store(code="S2", name="徐汇店", city="上海", address="漕溪北路2号", opening_hours=None),
        ])
        await session.flush()
        session.add_all([Guide(userid="g1", name="小王", store_code="S1"), Guide(userid="g2", name="小李", store_code="S2"),
                         Guide(userid="mgr1", name="店长老周", store_code="S1")])
        session.add_all([
            CouponTemplate(code="CASH20", name="满减券", kind="cash", value_fen=2000, min_spend_fen=19900,
                           valid_days=30, issued_count=0, active=True, description=""),
            CouponTemplate(code="MALL10", name="十元券", kind="cash", value_fen=1000, min_spend_fen=0, valid_days=15,
                           points_price=100, issued_count=0, active=True, description=""),
        ])


async def seed_customer(db, config, external_userid: str, *, name: str = "张三", guide: str = "g1", store: str = "S1",
                        points: int = 0, phone: str | None = None, member: bool = True, soon: int = 0,
                        tags: list | None = None) -> str | None:
    """A bound customer; a member with `points` (+ `soon` points lapsing in 5 days) and one CASH20 coupon."""
    async with db.session() as session, session.begin():
        session.add(Customer(external_userid=external_userid, name=name, guide_userid=guide, store_code=store,
                             status="bound", tags=tags or []))
        if not member:
            return None
        record, _ = await create_member(session, config, source="admin", external_userid=external_userid, phone=phone,
                                        name=name)
        record = await ledger.lock_member(session, record.id)
        if points:
            await ledger.credit(session, record, points, kind="earn", key=f"seed:{external_userid}", valid_days=365)
        if soon:
            await ledger.credit(session, record, soon, kind="earn", key=f"seed-soon:{external_userid}", valid_days=5)
        await coupons.issue_coupon(session, record, "CASH20", source="manual", key=f"seed-coupon:{external_userid}")
        return record.member_no


def replies_to(emulator, external_userid: str, channel: str = "kf") -> list[dict]:
    return [entry for entry in emulator.outbox if entry["channel"] == channel and entry.get("to") == external_userid]


def reply_text(entry: dict) -> str:
    """What the customer reads: the text, or the head, items and tail of a menu."""
    if entry["msgtype"] == "text":
        return entry["text"]["content"]
    body = entry["msgmenu"]
    items = " | ".join(item["click"]["content"] for item in body["list"])
    return f"{body.get('head_content', '')} [{items}] {body.get('tail_content', '')}"


def menu_ids(entry: dict) -> list[str]:
    return [item["click"]["id"] for item in entry["msgmenu"]["list"]]


async def intents_of(db, external_userid: str) -> list[str]:
    async with db.session() as session:
        rows = await session.scalars(select(KfMessage).where(KfMessage.external_userid == external_userid)
                                     .order_by(KfMessage.handled_at))
        return [row.intent for row in rows]


def days_from_now(days: float) -> dt.datetime:
    return utcnow() + dt.timedelta(days=days)
