"""Answering a page of 微信客服 messages in the sync's transaction: members with points, a mall coupon."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from sqlalchemy import event

from bot.customers.models import Customer
from bot.members import ledger
from bot.members.config import MembersConfig
from bot.members.members import create_member
from bot.members.models import CouponTemplate

KF = "wkBATCH1"


@pytest.fixture
def members_cfg():
    return MembersConfig(_env_file=None, join_bonus_points=0)


@pytest.fixture
def feature_configs(members_cfg) -> list:
    return [members_cfg]  # `world`'s service answers by these rules


async def seed_member(db, config, external_userid: str, points: int) -> None:
    async with db.session() as session, session.begin():
        session.add(Customer(external_userid=external_userid, name="顾客", status="bound", tags=[]))
        member, _ = await create_member(session, config, source="admin", external_userid=external_userid)
        if points:
            member = await ledger.lock_member(session, member.id)
            await ledger.credit(session, member, points, kind="earn", key=f"seed:{external_userid}", valid_days=365)


async def seed_mall_coupon(db) -> None:
    async with db.session() as session, session.begin():
        session.add(CouponTemplate(code="MALL10", name="十元券", kind="cash", value_fen=1000, min_spend_fen=0,
                                   valid_days=15, points_price=100, issued_count=0, active=True, description=""))


def text_message(msgid: str, customer: str, content: str, menu_id: str | None = None) -> dict:
    text = {"content": content, **({"menu_id": menu_id} if menu_id else {})}
    return {"msgid": msgid, "open_kfid": KF, "external_userid": customer, "origin": 3, "msgtype": "text",
            "send_time": int(time.time()), "text": text}


class PageOfMessages:
    """kf/sync_msg answering one page with these messages, counting its calls."""

    def __init__(self, messages: list[dict]):
        self.messages, self.calls = messages, 0

    async def sync_msg(self, **params) -> dict:
        self.calls += 1
        return {"next_cursor": str(self.calls), "has_more": 0, "msg_list": self.messages}


def services_reading(db, config: MembersConfig, messages: list[dict]):
    """What the sync uses of the services: the database, 微信客服 reading these messages, the settings."""
    return SimpleNamespace(db=db, wecom=SimpleNamespace(kf=PageOfMessages(messages)),
                           config={MembersConfig: config}.__getitem__)


class StatementCounter:
    """SQL statements the database is sent while the block runs."""

    def __init__(self, db):
        self.engine, self.count = db.engine.sync_engine, 0

    def _seen(self, *_):
        self.count += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_):
        event.remove(self.engine, "before_cursor_execute", self._seen)
