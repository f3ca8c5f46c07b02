"""The welcome benefit of a newly bound customer: membership and the new-member coupon.

Who gets it is the customers' welcome's rule (bot/customers/welcome.py `is_first_add`): for a
customer's first add, the welcome job names it (`new_member_sentence`, read-only) in the message
and the enrich sweep of the binding grants it a second or two later (`grant_new_member_benefits`,
one transaction per batch of bindings, never the binding's own), whether or not the welcome could
be sent. The `members.grant_welcome` job stays for jobs queued before this.
A coupon that cannot be issued (out of stock, inactive) leaves just the membership.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import corp_zone
from bot.customers.catalog import catalog_for
from bot.customers.models import Customer
from bot.jobs import JobContext, tasks
from bot.members import coupons, ledger
from bot.members.config import MembersConfig
from bot.members.errors import MemberError
from bot.members.members import create_member, find_member
from bot.members.models import Coupon, CouponTemplate, Member, PointsEntry, PointsLot
from bot.storage import utcnow

GRANT_WELCOME_JOB = "members.grant_welcome"

log = logging.getLogger("bot.members")


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
    session: AsyncSession, template_code: str | None, config: MembersConfig
) -> str | None:
    """The welcome message's benefit sentence, read-only: names the coupon the grant job will issue."""
    if not config.create_member_on_binding:
        return None
    template = await (coupons.get_template(session, template_code) if template_code
                      else ensure_default_template(session, config))
    if not template.active or (template.stock is not None and template.issued_count >= template.stock):
        return "您已成为我们的会员，回复「积分」随时查看积分。"
    _, until = coupons.validity(template, utcnow())
    return (f"🎁 新人礼：{template.name}（{coupons.describe(template)}），{until.astimezone(corp_zone()):%m月%d日}前有效，"
            "回复「我的券」随时查看。")


@dataclass(frozen=True, slots=True)
class TemplateCard:
    """What the welcome grant reads of a coupon template (same names as CouponTemplate); the stock
    is never taken from here: the conditional UPDATE that issues checks it."""

    id: int
    code: str
    name: str
    kind: str
    value_fen: int
    min_spend_fen: int
    discount_percent: int | None
    gift_name: str | None
    valid_days: int | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    active: bool
    per_member_limit: int | None
    stock: int | None


async def _read_template(session, code: str) -> TemplateCard | None:
    row = await session.scalar(select(CouponTemplate).where(CouponTemplate.code == code))
    return row and TemplateCard(row.id, row.code, row.name, row.kind, row.value_fen, row.min_spend_fen,
                                row.discount_percent, row.gift_name, row.valid_days, row.valid_from,
                                row.valid_until, row.active, row.per_member_limit, row.stock)


async def new_member_sentence(services, template_code: str | None) -> str | None:
    """The welcome's benefit sentence for a customer's first add (the welcome decides that); read-only."""
    config = services.config(MembersConfig)
    if not config.create_member_on_binding:
        return None
    code = template_code or config.welcome_template_code
    template = await catalog_for(services).read_through(services, "coupon_template", code, _read_template)
    if template is None or template.stock is not None:  # to be created, or its stock to be read
        async with services.db.read_session() as session:
            return await describe_welcome_benefit(session, template_code, config)
    now = utcnow()
    _, until = coupons.validity(template, now)
    if not template.active or (until is not None and until <= now):
        return "您已成为我们的会员，回复「积分」随时查看积分。"
    return _coupon_sentence(template, until)


def _coupon_sentence(template, until: dt.datetime) -> str:
    return f"🎁 新人礼：{template.name}（{coupons.describe(template)}），{until.astimezone(corp_zone()):%m月%d日}前有效，回复「我的券」随时查看。"


async def grant_new_member_benefits(services, grants: list[tuple[str, str | None]]) -> None:
    """For each (external_userid, template code) of a customer's first add (the welcome's rule):
    membership and the new-member coupon, all in one transaction (the enrich sweep's batch).

    Nearly every such customer is new to the members too: for the whole batch, two reads and one
    multi-row INSERT each of members, join-bonus entries and lots, and coupons, plus one stock
    UPDATE per template, instead of the general path's ~20 ORM statements per customer. Anything
    unusual (already a member, an identity taken, a template to create, a customer twice in the
    batch, a limited stock) takes the general path.
    """
    config = services.config(MembersConfig)
    templates = {}
    for _, template_code in grants:
        code = template_code or config.welcome_template_code
        templates[code] = await catalog_for(services).read_through(services, "coupon_template", code, _read_template)
    async with services.db.session() as session, session.begin():
        conn = await session.connection()
        customers, members = await _customers_and_members(conn, [external_userid for external_userid, _ in grants])
        new, general, seen = [], [], set()
        for external_userid, template_code in grants:
            customer = customers.get(external_userid)
            template = templates[template_code or config.welcome_template_code]
            unionid = customer is not None and customer.unionid
            is_member = external_userid in members or (unionid and unionid in members)
            if (config.create_member_on_binding and template is not None and not is_member
                    and external_userid not in seen and not (unionid and unionid in seen)):
                new.append((external_userid, customer, template))
                seen.update(filter(None, (external_userid, unionid)))
            else:
                general.append((external_userid, template_code))
        general += await _new_members_with_coupons(conn, config, new)
        for external_userid, template_code in general:
            await grant_welcome_benefit(session, external_userid=external_userid, template_code=template_code,
                                        config=config)


async def _customers_and_members(conn, external_userids: list[str]) -> tuple[dict, set[str]]:
    """The batch's customers (by external_userid) and the identities (external_userid, unionid)
    that are members already: two reads for the whole batch."""
    customers = {row.external_userid: row for row in await conn.execute(
        select(Customer.external_userid, Customer.name, Customer.unionid)
        .where(Customer.external_userid.in_(external_userids)))}
    unionids = [row.unionid for row in customers.values() if row.unionid]
    members = set()
    for row in await conn.execute(select(Member.external_userid, Member.unionid).where(
            or_(Member.external_userid.in_(external_userids), Member.unionid.in_(unionids)))):
        members.update(filter(None, (row.external_userid, row.unionid)))
    return customers, members


async def _new_members_with_coupons(conn, config: MembersConfig, new: list) -> list[tuple[str, str | None]]:
    """Members (with the join bonus) and their welcome coupons, one INSERT per table for the batch;
    the (external_userid, template code) it could not do, for the general path."""
    if not new:
        return []
    now, bonus = utcnow(), config.join_bonus_points
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    created = {row.external_userid: (row.id, row.member_no) for row in await conn.execute(
        insert(Member.__table__).on_conflict_do_nothing().returning(
            Member.__table__.c.id, Member.__table__.c.member_no, Member.__table__.c.external_userid),
        [{"member_no": "M" + "".join(secrets.choice("0123456789") for _ in range(10)), "source": "binding",
          "name": (customer is not None and customer.name) or "", "external_userid": external_userid,
          "unionid": (customer is not None and customer.unionid) or None, "stage": "member",
          "stage_changed_at": now, "joined_at": now, "points_balance": bonus}
         for external_userid, customer, _ in new])}
    # A concurrent grant made the member (or a random number was taken): the general path.
    leftover = [(external_userid, template.code) for external_userid, _, template in new
                if external_userid not in created]
    if not created:
        return leftover
    if bonus:  # what ledger.credit writes for the join bonus
        expires_at = now + dt.timedelta(days=config.points_valid_days)
        entries = await conn.execute(PointsEntry.__table__.insert().returning(
            PointsEntry.__table__.c.id, PointsEntry.__table__.c.member_id), [
            {"member_id": member_id, "kind": "earn", "points": bonus, "balance_after": bonus,
             "idempotency_key": f"join:{member_id}", "reason": "入会礼", "actor": "system",
             "expires_at": expires_at, "created_at": now} for member_id, _ in created.values()])
        await conn.execute(PointsLot.__table__.insert(), [
            {"member_id": member_id, "entry_id": entry_id, "expires_at": expires_at, "remaining": bonus}
            for entry_id, member_id in entries])
    by_template: dict[str, tuple[TemplateCard, list]] = {}
    for external_userid, _, template in new:
        if external_userid in created:
            by_template.setdefault(template.code, (template, []))[1].append(created[external_userid])
    for template, members in by_template.values():
        await _first_coupons(conn, members, template, now)
    return leftover


async def _first_coupons(conn, members: list[tuple[int, str]], template: TemplateCard, now: dt.datetime) -> None:
    """The welcome coupons of members created in this transaction (they hold none yet)."""
    start, until = coupons.validity(template, now)
    usable = template.active and until > now and (template.per_member_limit is None or template.per_member_limit > 0)
    if not usable:
        log.warning("no welcome coupon for %d new members: template %s is not issuing", len(members), template.code)
        return
    table = CouponTemplate.__table__
    if template.stock is not None or await conn.scalar(
            update(table).where(table.c.id == template.id, table.c.stock.is_(None))
            .values(issued_count=table.c.issued_count + len(members)).returning(table.c.id)) is None:
        for member in members:  # a limited stock: one conditional UPDATE per coupon, as issue_coupon does
            await _first_coupon(conn, member, template)
        return
    await conn.execute(Coupon.__table__.insert(), [
        {"code": "".join(secrets.choice(coupons.CODE_ALPHABET) for _ in range(12)), "template_code": template.code,
         "member_id": member_id, "source": "welcome", "issue_key": f"welcome:{member_id}", "status": "issued",
         "valid_from": start, "valid_until": until, "issued_at": now} for member_id, _ in members])


async def _first_coupon(conn, member: tuple[int, str], template: TemplateCard) -> str:
    """The welcome coupon of a member created in this transaction (they hold none yet)."""
    member_id, member_no = member
    now = utcnow()
    start, until = coupons.validity(template, now)
    usable = template.active and until > now and (template.per_member_limit is None or template.per_member_limit > 0)
    # The same conditional UPDATE as coupons.issue_coupon: two grants racing for the last one cannot both win.
    if not usable or await conn.scalar(
            update(CouponTemplate.__table__).where(
                CouponTemplate.__table__.c.id == template.id,
                or_(CouponTemplate.__table__.c.stock.is_(None),
                    CouponTemplate.__table__.c.issued_count < CouponTemplate.__table__.c.stock))
            .values(issued_count=CouponTemplate.__table__.c.issued_count + 1)
            .returning(CouponTemplate.__table__.c.id)) is None:
        log.warning("no welcome coupon for %s: template %s is not issuing", member_no, template.code)
        return f"您已成为会员（会员号 {member_no}）。"
    await conn.execute(Coupon.__table__.insert().values(
        code="".join(secrets.choice(coupons.CODE_ALPHABET) for _ in range(12)), template_code=template.code,
        member_id=member_id, source="welcome", issue_key=f"welcome:{member_id}", status="issued",
        valid_from=start, valid_until=until, issued_at=now))
    return _coupon_sentence(template, until)


@tasks(GRANT_WELCOME_JOB, quick=True)
async def grant_welcome_job(job: JobContext, payload: dict) -> None:
    """Issue what the welcome message announced (idempotent: one welcome coupon per member)."""
    async with job.services.db.session() as session, session.begin():
        await grant_welcome_benefit(session, external_userid=payload["external_userid"],
                                    template_code=payload.get("template_code"),
                                    config=job.services.config(MembersConfig))


def coupon_sentence(coupon: Coupon, template: CouponTemplate) -> str:
    until = coupon.valid_until.astimezone(corp_zone())
    return f"{template.name}（{coupons.describe(template)}），{until:%m月%d日}前有效"


async def grant_welcome_benefit(
    session: AsyncSession, *, external_userid: str, template_code: str | None, config: MembersConfig,
) -> WelcomeBenefit | None:
    """Make the customer a member (if configured) and issue the welcome coupon once per member."""
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
