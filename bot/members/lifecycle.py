"""Lifecycle stage of a customer, from membership and purchases (one rule, in Python and in SQL).

new_friend: a WeCom customer who is not a member · member: no purchase yet · first_purchase ·
repeat: 2–7 purchases · loyal: 8+ (the brand's KOC) · at_risk: no purchase for `at_risk_days` ·
dormant: none for `dormant_days` (default 300).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.members.config import MembersConfig
from bot.members.models import Member
from bot.storage import utcnow

STAGES = ("new_friend", "member", "first_purchase", "repeat", "loyal", "at_risk", "dormant")
STAGE_NAMES = {"new_friend": "新好友", "member": "未购会员", "first_purchase": "首购", "repeat": "复购",
               "loyal": "忠诚(KOC)", "at_risk": "流失预警", "dormant": "沉睡"}
LOYAL_FROM = 8


def stage_of(member: Member | None, config: MembersConfig, now: dt.datetime | None = None) -> str:
    if member is None:
        return "new_friend"
    now = now or utcnow()
    if member.last_purchase_at is not None:
        idle = now - member.last_purchase_at
        if idle >= dt.timedelta(days=config.dormant_days):
            return "dormant"
        if idle >= dt.timedelta(days=config.at_risk_days):
            return "at_risk"
    count = member.purchase_count
    if count >= LOYAL_FROM:
        return "loyal"
    if count >= 2:
        return "repeat"
    return "first_purchase" if count == 1 else "member"


def stage_expression(config: MembersConfig, now: dt.datetime, member=None):
    """The same rule as a SQL expression over a (possibly outer-joined) members row.

    `member`: columns of the members table (the mapped class, or an alias's `.c`).
    """
    member = Member if member is None else member
    return case(
        (member.id.is_(None), "new_friend"),
        (member.last_purchase_at <= now - dt.timedelta(days=config.dormant_days), "dormant"),
        (member.last_purchase_at <= now - dt.timedelta(days=config.at_risk_days), "at_risk"),
        (member.purchase_count >= LOYAL_FROM, "loyal"),
        (member.purchase_count >= 2, "repeat"),
        (member.purchase_count == 1, "first_purchase"),
        else_="member",
    )


def refresh_stage(member: Member, config: MembersConfig, now: dt.datetime | None = None) -> str:
    """Store the member's current stage (call after purchases change)."""
    now = now or utcnow()
    stage = stage_of(member, config, now)
    if stage != member.stage:
        member.stage, member.stage_changed_at = stage, now
    return stage


async def refresh_idle_stages(session: AsyncSession, config: MembersConfig, now: dt.datetime | None = None) -> int:
    """Move members whose last purchase has aged into at_risk / dormant (a daily job); returns moved rows."""
    now = now or utcnow()
    stage = stage_expression(config, now)
    result = await session.execute(
        update(Member).where(Member.status == "active", Member.last_purchase_at.is_not(None), Member.stage != stage)
        .values(stage=stage, stage_changed_at=now).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0

