"""A guide's `查 <phone or name>`: the customer's card, only for the guide's own customers
(a store manager: the customers of their stores). Someone else's customer reads as not found."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers.models import Customer
from bot.members import coupons, ledger, lifecycle
from bot.members.chat.replies import day, yuan
from bot.members.config import MembersConfig
from bot.members.members import find_member
from bot.members.models import Member, Order
from bot.stores.models import Guide, Store

PHONE = re.compile(r"1[3-9]\d{9}")
MAX_CARDS = 3
APP_TEXT_BYTES = 2048


def parse_lookup(content: str) -> str:
    """「查 138 0013 8000」 → 「13800138000」; 「查　张三」 → 「张三」."""
    text = unicodedata.normalize("NFKC", content).strip().removeprefix("查").strip()
    digits = re.sub(r"[\s-]", "", text)
    return digits if PHONE.fullmatch(digits) else text


async def _scope(session: AsyncSession, config: MembersConfig, userid: str):
    """A SQL condition on customers for what this member of staff may see, or None."""
    stores = config.store_managers.get(userid)
    if stores:
        return Customer.store_code.in_(stores)
    guide = await session.scalar(select(Guide).where(Guide.userid == userid))
    if guide is None or guide.status == "resigned":
        return None
    return Customer.guide_userid == userid


async def lookup_reply(session: AsyncSession, config: MembersConfig, userid: str, content: str) -> str:
    query = parse_lookup(content)
    if not query:
        return "请在「查」后面写客户的手机号或名字，例如：查 13800138000"
    scope = await _scope(session, config, userid)
    if scope is None:
        return "只有导购和店长可以查询客户。"
    if PHONE.fullmatch(query):
        member = await find_member(session, phone=query)
        match = Customer.external_userid == (member.external_userid if member and member.external_userid else "")
    else:
        named = select(Member.external_userid).where(Member.name == query, Member.external_userid.is_not(None))
        match = or_(Customer.name.contains(query, autoescape=True), Customer.external_userid.in_(named))
    customers = (await session.scalars(select(Customer).where(scope, match).order_by(Customer.id)
                                       .limit(MAX_CARDS + 1))).all()
    if not customers:
        return f"没有找到您名下的客户「{query}」。"
    cards = [await customer_card(session, config, customer) for customer in customers[:MAX_CARDS]]
    more = "\n（还有更多匹配，请用手机号精确查询）" if len(customers) > MAX_CARDS else ""
    return _fit("\n\n".join(cards) + more)


async def customer_card(session: AsyncSession, config: MembersConfig, customer: Customer) -> str:
    member = await find_member(session, external_userid=customer.external_userid)
    lines = [f"客户：{customer.name or customer.external_userid}" + (f"（会员号 {member.member_no}）" if member else "（非会员）"),
             f"阶段：{lifecycle.STAGE_NAMES[lifecycle.stage_of(member, config)]}"]
    if member:
        soon, first = await ledger.expiring_soon(session, member.id, config.expiring_soon_days)
        lines.append(f"积分：{member.points_balance}" + (f"（{soon} 将于 {day(first)} 到期）" if soon else ""))
        usable = await coupons.usable_coupons(session, member.id)
        listed = "；".join(f"{t.name}（{coupons.describe(t)}，{day(c.valid_until)}到期）" for c, t in usable[:5])
        lines.append(f"可用券：{len(usable)} 张" + (f" — {listed}" if listed else ""))
    lines.append("标签：" + ("、".join(str(tag) for tag in customer.tags) if customer.tags else "无"))
    lines.append("最近消费：" + await _last_purchase(session, member))
    return "\n".join(lines)


async def _last_purchase(session: AsyncSession, member: Member | None) -> str:
    if member is None:
        return "无"
    order = await session.scalar(select(Order).where(Order.member_id == member.id, Order.status == "paid")
                                 .order_by(Order.paid_at.desc()).limit(1))
    if order is None:
        return "无"
    store = order.store_code and await session.scalar(select(Store.name).where(Store.code == order.store_code))
    where = f"（{store or order.store_code}）" if order.store_code else "（线上）"
    return f"{day(order.paid_at)} {yuan(order.amount_fen)}{where}"


def _fit(text: str) -> str:
    """App text messages are capped at 2048 bytes."""
    data = text.encode()
    if len(data) <= APP_TEXT_BYTES:
        return text
    return data[: APP_TEXT_BYTES - 12].decode(errors="ignore") + "…（已截断）"
