"""Fixtures and helpers shared by the members, points, coupons, orders and chat tests."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.api.auth import Role, create_token
from bot.members import ledger
from bot.members.config import MembersConfig
from bot.members.members import create_member
from bot.members.models import CouponTemplate, Member
from bot.storage import utcnow


@pytest.fixture
def members_cfg():
    """Predictable rules: no join bonus unless a test asks, 1 point per yuan, 365-day points."""
    return MembersConfig(_env_file=None, join_bonus_points=0, referral_bonus_points=50)


@pytest.fixture
def feature_configs(members_cfg) -> list:
    """`world`'s service follows the same rules (a test changing members_cfg changes the service's)."""
    return [members_cfg]


async def new_member(db, config: MembersConfig, **identities) -> Member:
    async with db.session() as session, session.begin():
        member, _ = await create_member(session, config, source="admin", **identities)
    return member


async def give_points(db, member_id: int, points: int, key: str, *, days: int = 365,
                      now: dt.datetime | None = None) -> None:
    async with db.session() as session, session.begin():
        member = await ledger.lock_member(session, member_id)
        await ledger.credit(session, member, points, kind="earn", key=key, valid_days=days, now=now)


async def add_template(db, code: str, **fields) -> CouponTemplate:
    values = dict(code=code, name=f"券{code}", kind="cash", value_fen=2000, min_spend_fen=0, valid_days=30,
                  issued_count=0, active=True, description="")
    values.update(fields)
    async with db.session() as session, session.begin():
        template = CouponTemplate(**values)
        session.add(template)
    return template


async def tokens(db) -> dict[str, str]:
    """One bearer header per role (store manager of S1, guide g1)."""
    made = {
        "hq": await create_token(db, Role.HQ_ADMIN),
        "integration": await create_token(db, Role.INTEGRATION),
        "manager": await create_token(db, Role.STORE_MANAGER, store_codes=["S1"]),
        "guide": await create_token(db, Role.GUIDE, guide_userid="g1"),
    }
    return {role: {"Authorization": f"Bearer {token}"} for role, token in made.items()}


def days_ago(days: float) -> dt.datetime:
    return utcnow() - dt.timedelta(days=days)
