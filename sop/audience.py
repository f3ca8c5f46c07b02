"""Audience filters for SOPs and campaigns: which customers (external_userids) a step targets.

Lifecycle stage is computed in SQL at query time from the member row (purchases, last purchase),
so "at risk" and "dormant" are right even between runs of the nightly stage refresh.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Select, select

from bot.customers.models import Customer
from bot.members.config import MembersConfig, members_config
from bot.members.lifecycle import STAGES, stage_expression
from bot.members.models import Member
from bot.storage import utcnow


@dataclass(frozen=True)
class AudienceFilter:
    """Empty lists mean "any". Stages: new_friend, member, first_purchase, repeat, loyal, at_risk, dormant."""

    stages: list[str] = field(default_factory=list)
    store_codes: list[str] = field(default_factory=list)
    guide_userids: list[str] = field(default_factory=list)
    bound_only: bool = True  # customers still friends with a guide

    def __post_init__(self) -> None:
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s): {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")


def select_audience(audience: AudienceFilter, config: MembersConfig | None = None,
                    now: dt.datetime | None = None) -> Select:
    """SELECT customers.external_userid matching the filter (run it with session.scalars)."""
    config = config or members_config()
    active = Member.__table__.alias("active_member")
    statement = select(Customer.external_userid).outerjoin(
        active, (active.c.external_userid == Customer.external_userid) & (active.c.status == "active"))
    if audience.stages:
        statement = statement.where(stage_expression(config, now or utcnow(), active.c).in_(audience.stages))
    if audience.store_codes:
        statement = statement.where(Customer.store_code.in_(audience.store_codes))
    if audience.guide_userids:
        statement = statement.where(Customer.guide_userid.in_(audience.guide_userids))
    if audience.bound_only:
        statement = statement.where(Customer.status == "bound")
    return statement.order_by(Customer.id)
