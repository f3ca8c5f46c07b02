"""The welcome benefit of a newly bound customer: membership and the new-member coupon.

The welcome job grants it (`grant_on_welcome`, one short transaction of its own, never the
binding's) just before it sends the message that announces it; an add without a welcome code (the
guide greets from the console) gets it from the `members.grant_welcome` job the binding queues.
A coupon that cannot be issued (out of stock, inactive) leaves just the membership.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers.models import Customer, CustomerBinding
from bot.jobs import JobContext, tasks
from bot.members import coupons, ledger
from bot.members.config import MembersConfig, members_config
from bot.members.errors import MemberError
from bot.members.members import create_member, find_member
from bot.members.models import Coupon, CouponTemplate, Member
from bot.storage import utcnow

GRANT_WELCOME_JOB = "members.grant_welcome"

log = logging.getLogger("bot.members")
CHINA = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class WelcomeBenefit:
    member_no: str
    coupon_code: str | None
    text: str  # appended to the welcome message


async def ensure_default_template(session: AsyncSession, config: MembersConfig) -> CouponTemplate:
    """The new-member coupon (valid 7 days by default), created the first time it is needed."""
    template = await session.scalar(select(CouponTemplate).where(CouponTemplate.code == config.welcome_template_code))
    if template is None:
        # Several first bindings may get here at once: the unique code lets exactly one insert win.
        dialect = session.get_bind().dialect.name
        insert = sqlite_insert if dialect == "sqlite" else pg_insert
        await session.execute(
            insert(CouponTemplate).values(
                code=config.welcome_template_code, name="新人专享券", kind="cash",
                value_fen=config.welcome_coupon_value_fen, min_spend_fen=config.welcome_coupon_min_spend_fen,
                valid_days=config.welcome_coupon_valid_days, per_member_limit=1, description="新会员欢迎礼",
                issued_count=0, active=True, created_at=utcnow(),
            ).on_conflict_do_nothing(index_elements=["code"])
        )
        template = await session.scalar(
            select(CouponTemplate).where(CouponTemplate.code == config.welcome_template_code)
        )
    return template


async def describe_welcome_benefit(
    session: AsyncSession, template_code: str | None, config: MembersConfig | None = None
) -> str | None:
    """The welcome message's benefit sentence, read-only: names the coupon the grant job will issue."""
    config = config or members_config()
    if not config.create_member_on_binding:
        return None
    template = await (coupons.get_template(session, template_code) if template_code
                      else ensure_default_template(session, config))
    if not template.active or (template.stock is not None and template.issued_count >= template.stock):
        return "您已成为我们的会员，回复「积分」随时查看积分。"
    _, until = coupons.validity(template, utcnow())
    return (f"🎁 新人礼：{template.name}（{coupons.describe(template)}），{until.astimezone(CHINA):%m月%d日}前有效，"
            "回复「我的券」随时查看。")


async def grant_on_welcome(db, external_userid: str, template_code: str | None,
                           added_at: dt.datetime) -> str | None:
    """The welcome job's grant: for a customer never bound before `added_at`, membership and the
    new-member coupon in one short transaction; returns the sentence that announces them."""
    async with db.session() as session, session.begin():
        bound_before = await session.scalar(select(CustomerBinding.id).where(
            CustomerBinding.external_userid == external_userid, CustomerBinding.started_at < added_at).limit(1))
        if bound_before is not None:
            return None
        benefit = await grant_welcome_benefit(session, external_userid=external_userid, template_code=template_code)
    return benefit and benefit.text


@tasks(GRANT_WELCOME_JOB)
async def grant_welcome_job(job: JobContext, payload: dict) -> None:
    """Issue what the welcome message announced (idempotent: one welcome coupon per member)."""
    async with job.services.db.session() as session, session.begin():
        await grant_welcome_benefit(session, external_userid=payload["external_userid"],
                                    template_code=payload.get("template_code"))


def coupon_sentence(coupon: Coupon, template: CouponTemplate) -> str:
    until = coupon.valid_until.astimezone(CHINA)
    return f"{template.name}（{coupons.describe(template)}），{until:%m月%d日}前有效"


async def grant_welcome_benefit(
    session: AsyncSession, *, external_userid: str, template_code: str | None,
    config: MembersConfig | None = None,
) -> WelcomeBenefit | None:
    """Make the customer a member (if configured) and issue the welcome coupon once per member."""
    config = config or members_config()
    member = await _member_for(session, config, external_userid)
    if member is None:
        return None
    member = await ledger.lock_member(session, member.id)
    if template_code is None:
        template_code = (await ensure_default_template(session, config)).code
    try:
        async with session.begin_nested():
            coupon = await coupons.issue_coupon(session, member, template_code, source="welcome",
                                                key=f"welcome:{member.id}")
            template = await coupons.get_template(session, template_code)
    except MemberError as exc:
        log.warning("no welcome coupon for %s: %s", member.member_no, exc.message)
        return WelcomeBenefit(member.member_no, None, f"您已成为会员（会员号 {member.member_no}）。")
    return WelcomeBenefit(member.member_no, coupon.code,
                          f"🎁 新人礼：{coupon_sentence(coupon, template)}，回复「我的券」随时查看。")


async def _member_for(session: AsyncSession, config: MembersConfig, external_userid: str) -> Member | None:
    member = await find_member(session, external_userid=external_userid)
    if member is not None or not config.create_member_on_binding:
        return member
    customer = await session.scalar(select(Customer).where(Customer.external_userid == external_userid))
    member, _ = await create_member(session, config, source="binding", external_userid=external_userid,
                                    unionid=(customer and customer.unionid) or None,
                                    name=(customer and customer.name) or "")
    return member
