"""One answer per intent, read from (and for the points mall, written to) the database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.customers.models import Customer
from bot.members import coupons, ledger
from bot.members.chat.replies import Reply, day, help_menu, menu, opening_hours, text
from bot.members.config import MembersConfig
from bot.members.errors import MemberError
from bot.members.members import create_member, find_member
from bot.members.models import Member
from bot.members.welcome import grant_welcome_benefit
from bot.stores.models import Guide, Store

MALL_REFUSALS = {"out_of_stock": "这张券已经兑完了", "per_member_limit": "您已达到这张券的兑换上限",
                 "template_inactive": "这张券已下架", "not_in_mall": "这张券不在积分商城里",
                 "template_not_found": "没有找到这张券"}


class Conversation(Protocol):
    """The part of the customer's conversation an answer reads and writes (see answering.Window)."""

    pending: dict | None


@dataclass
class Asker:
    """Who wrote: the customer, their member record (if any) and their conversation."""

    external_userid: str
    member: Member | None
    conversation: Conversation
    msgid: str


def join_hint(config: MembersConfig) -> Reply:
    how = "回复「入会」即可免费加入" if config.chat_join_enabled else "添加您专属导购的企业微信即可加入"
    return text(f"您还不是会员哦。{how}，新会员还有新人券相送！")


async def points(session: AsyncSession, config: MembersConfig, asker: Asker) -> Reply:
    soon, first = await ledger.expiring_soon(session, asker.member.id, config.expiring_soon_days)
    return points_reply(asker.member.points_balance, soon, first)


def points_reply(balance: int, soon: int, first: dt.datetime | None) -> Reply:
    """The balance, and the points lapsing soon (`soon` of them, the first on `first`)."""
    lines = [f"您当前有 {balance} 积分。"]
    if soon:
        lines.append(f"其中 {soon} 积分将于 {day(first)} 到期，记得及时使用哦。")
    lines.append("回复「积分商城」可以用积分兑换优惠券。")
    return text("\n".join(lines))


async def my_coupons(session: AsyncSession, config: MembersConfig, asker: Asker) -> Reply:
    usable = await coupons.usable_coupons(session, asker.member.id)
    if not usable:
        return text("您暂时没有可用的优惠券。回复「积分商城」看看能用积分兑换什么。")
    lines = [f"您有 {len(usable)} 张可用优惠券："]
    for index, (coupon, template) in enumerate(usable[:10], 1):
        lines.append(f"{index}. {template.name}（{coupons.describe(template)}），{day(coupon.valid_until)}到期，券码 {coupon.code}")
    if len(usable) > 10:
        lines.append(f"……还有 {len(usable) - 10} 张，请到会员中心查看。")
    return text("\n".join(lines))


async def mall(session: AsyncSession, config: MembersConfig, asker: Asker) -> Reply:
    offers = (await coupons.mall_templates(session))[:10]
    if not offers:
        return text("积分商城暂时没有可兑换的券，过几天再来看看吧。")
    items = [(f"mall:{t.code}", f"{t.name}（{coupons.describe(t)}）{t.points_price}积分") for t in offers]
    return menu(f"积分商城（您有 {asker.member.points_balance} 积分），点击想兑换的券：", items)


async def mall_item(session: AsyncSession, config: MembersConfig, asker: Asker, code: str) -> Reply:
    offer = next((t for t in await coupons.mall_templates(session) if t.code == code), None)
    if offer is None:
        return text("这张券现在不能兑换了。回复「积分商城」看看其他的吧。")
    asker.conversation.pending = {"mall": code}
    return menu(f"确认用 {offer.points_price} 积分兑换「{offer.name}（{coupons.describe(offer)}）」吗？",
                [(f"mallok:{code}", "确认兑换"), ("mallno", "取消")])


async def mall_confirm(session: AsyncSession, config: MembersConfig, asker: Asker, code: str) -> Reply:
    pending = (asker.conversation.pending or {}).get("mall")
    asker.conversation.pending = None
    if not pending or (code and code != pending):
        return text("这次兑换已经处理过或已取消。回复「积分商城」重新选择。")
    member = await ledger.lock_member(session, asker.member.id)
    try:
        async with session.begin_nested():  # a refusal undoes the points and the coupon, nothing else
            coupon = await coupons.buy_with_points(session, member, pending, key=f"kfmall:{asker.msgid}")
    except ledger.InsufficientPoints as exc:
        return text(f"积分不足：兑换需要 {exc.details['wanted']} 积分，您当前有 {exc.details['balance']} 积分。")
    except MemberError as exc:
        return text(f"抱歉，{MALL_REFUSALS.get(exc.code, '暂时无法兑换')}。")
    template = await coupons.get_template(session, pending)
    return text(f"兑换成功！「{template.name}」已放入您的账户，{day(coupon.valid_until)}前有效，券码 {coupon.code}。"
                f"\n剩余 {member.points_balance} 积分。")


async def mall_cancel(session: AsyncSession, config: MembersConfig, asker: Asker) -> Reply:
    had = bool(asker.conversation.pending)
    asker.conversation.pending = None
    return text("已取消兑换。回复「积分商城」可以重新选择。") if had else help_menu()


async def guide_and_store(session: AsyncSession, config: MembersConfig, asker: Asker) -> Reply:
    customer = await session.scalar(select(Customer).where(Customer.external_userid == asker.external_userid))
    guide = customer and customer.guide_userid and await session.scalar(
        select(Guide).where(Guide.userid == customer.guide_userid))
    store_code = (customer and customer.store_code) or (guide and guide.store_code)
    store = store_code and await session.scalar(select(Store).where(Store.code == store_code))
    if not guide and not store:
        return text("您还没有专属导购。扫描门店里的二维码添加导购，就能享受一对一服务啦。")
    lines = []
    if guide:
        lines.append(f"您的专属导购：{guide.name}")
    if store:
        lines += [f"门店：{store.name}", f"地址：{store.address or '请咨询导购'}",
                  f"营业时间：{opening_hours(store.opening_hours)}"]
    return text("\n".join(lines))


async def join(session: AsyncSession, config: MembersConfig, asker: Asker) -> Reply:
    if asker.member is not None:
        return text(f"您已经是会员啦（会员号 {asker.member.member_no}）。回复「帮助」看看我能做什么。")
    if not config.chat_join_enabled:
        return join_hint(config)
    member, _ = await create_member(session, config, source="chat", external_userid=asker.external_userid)
    asker.member = member
    benefit = await grant_welcome_benefit(session, external_userid=asker.external_userid, template_code=None,
                                          config=config)
    gift = f"\n{benefit.text}" if benefit and benefit.coupon_code else ""
    return text(f"欢迎加入！您的会员号是 {member.member_no}。{gift}")


async def load_member(session: AsyncSession, external_userid: str) -> Member | None:
    return await find_member(session, external_userid=external_userid)
