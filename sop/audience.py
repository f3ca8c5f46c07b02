"""The one audience language (campaigns, SOPs, the console) and its compilation to one SQL query.

An audience is JSON; every field is optional and fields combine with AND. Unknown fields are
refused, naming the field. Lifecycle stage is computed in SQL at query time from the member row,
so "at risk" and "dormant" are right even between runs of the nightly stage refresh. Tags come
from the customer-tag mirror (an indexed table, bot/customers/tag_mirror.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from sqlalchemy import Select, and_, exists, func, or_, select

from bot.config import corp_zone
from bot.customers.models import Customer
from bot.customers.tag_mirror_models import CustomerTag
from bot.members.config import MembersConfig
from bot.members.lifecycle import STAGES, stage_expression
from bot.members.models import Coupon, Member
from bot.storage import utcnow
from bot.validation import rule_broken

Stage = Literal["new_friend", "member", "first_purchase", "repeat", "loyal", "at_risk", "dormant"]
GENDERS = {"unknown": 0, "male": 1, "female": 2}  # WeCom's gender codes
Codes = list[str] | None
Days = int | None


class Audience(BaseModel):
    """Who: store/guide/channel codes, tags, stages, profile, purchases, points, coupons, birthdays."""

    model_config = ConfigDict(extra="forbid")

    stores: Codes = Field(None, max_length=10_000)
    guides: Codes = Field(None, max_length=10_000)
    channels: Codes = Field(None, max_length=1_000)
    tags_any: Codes = Field(None, max_length=100, description="carries at least one of these tags")
    tags_all: Codes = Field(None, max_length=20, description="carries every one of these tags")
    tags_none: Codes = Field(None, max_length=100, description="carries none of these tags")
    stages: list[Stage] | None = None
    gender: Literal["male", "female", "unknown"] | None = None
    added_within_days: Days = Field(None, ge=0, le=3650)
    purchased_within_days: Days = Field(None, ge=1, le=3650)
    no_purchase_for_days: Days = Field(None, ge=1, le=3650)
    points_min: int | None = Field(None, ge=0)
    points_max: int | None = Field(None, ge=0)
    has_unused_coupon: StrictBool | None = None
    coupon_expires_within_days: Days = Field(None, ge=0, le=3650)
    birthday_within_days: Days = Field(None, ge=0, le=366)

    @model_validator(mode="after")
    def _ranges(self) -> Audience:
        if self.points_min is not None and self.points_max is not None and self.points_min > self.points_max:
            raise rule_broken("points_min must not exceed points_max")
        return self

    def is_empty(self) -> bool:
        return not self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class AudienceFilter:
    """The members feature's older filter. Empty lists mean "any"."""

    stages: list[str] = field(default_factory=list)
    store_codes: list[str] = field(default_factory=list)
    guide_userids: list[str] = field(default_factory=list)
    bound_only: bool = True  # customers still friends with a guide

    def __post_init__(self) -> None:
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s): {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")

    def as_audience(self) -> Audience:
        return Audience(stages=self.stages or None, stores=self.store_codes or None,
                        guides=self.guide_userids or None)


def active_member():
    """The members table aliased for the outer join (a customer may have no member)."""
    return Member.__table__.alias("active_member")


def member_join(statement: Select, member) -> Select:
    return statement.outerjoin(
        member, (member.c.external_userid == Customer.external_userid) & (member.c.status == "active"))


def _birthday_days(now: dt.datetime, days: int) -> list[str]:
    """'MM-DD' of today and the next `days` days (China time, where birthdays are lived)."""
    today = now.astimezone(corp_zone()).date()
    return sorted({(today + dt.timedelta(days=n)).strftime("%m-%d") for n in range(days + 1)})


def _month_day(column, dialect: str):
    if dialect == "sqlite":
        return func.strftime("%m-%d", column)
    return func.to_char(column, "MM-DD")


def audience_conditions(audience: Audience, member, *, now: dt.datetime, dialect: str,
                        members: MembersConfig) -> list:
    """WHERE clauses over `customers` and the outer-joined `member` alias, one per given field
    (`members`: the lifecycle rules that say a member's stage)."""
    a, m, where = audience, member.c, []
    for column, codes in ((Customer.store_code, a.stores), (Customer.guide_userid, a.guides),
                          (Customer.channel_code, a.channels)):
        if codes is not None:
            where.append(column.in_(codes))

    def tagged(names):
        return exists().where(CustomerTag.external_userid == Customer.external_userid, CustomerTag.tag_name.in_(names))

    if a.tags_any:
        where.append(tagged(a.tags_any))
    for name in a.tags_all or []:
        where.append(tagged([name]))
    if a.tags_none:
        where.append(~tagged(a.tags_none))
    if a.stages is not None:
        where.append(stage_expression(members, now, m).in_(a.stages))
    if a.gender is not None:
        where.append(Customer.gender == GENDERS[a.gender])
    if a.added_within_days is not None:
        where.append(Customer.bound_at >= now - dt.timedelta(days=a.added_within_days))
    if a.purchased_within_days is not None:
        where.append(m.last_purchase_at >= now - dt.timedelta(days=a.purchased_within_days))
    if a.no_purchase_for_days is not None:
        where.append(or_(m.last_purchase_at.is_(None),
                         m.last_purchase_at < now - dt.timedelta(days=a.no_purchase_for_days)))
    if a.points_min is not None:
        where.append(m.points_balance >= a.points_min)
    if a.points_max is not None:
        where.append(func.coalesce(m.points_balance, 0) <= a.points_max)
    usable = and_(Coupon.member_id == m.id, Coupon.status == "issued", Coupon.valid_until > now)
    if a.has_unused_coupon is not None:
        has = exists().where(usable)
        where.append(has if a.has_unused_coupon else ~has)
    if a.coupon_expires_within_days is not None:
        where.append(exists().where(usable, Coupon.valid_until <= now + dt.timedelta(days=a.coupon_expires_within_days)))
    if a.birthday_within_days is not None:
        where.append(_month_day(m.birthday, dialect).in_(_birthday_days(now, a.birthday_within_days)))
    return where


def select_audience(audience: Audience | AudienceFilter, members: MembersConfig,
                    now: dt.datetime | None = None, dialect: str = "postgresql") -> Select:
    """SELECT customers.external_userid matching the audience (run it with session.scalars).

    An AudienceFilter keeps its `bound_only`; an Audience selects customers still bound.
    """
    bound_only = audience.bound_only if isinstance(audience, AudienceFilter) else True
    if isinstance(audience, AudienceFilter):
        audience = audience.as_audience()
    member = active_member()
    statement = member_join(select(Customer.external_userid), member)
    statement = statement.where(*audience_conditions(audience, member, now=now or utcnow(), dialect=dialect,
                                                     members=members))
    if bound_only:
        statement = statement.where(Customer.status == "bound")
    return statement.order_by(Customer.id)
