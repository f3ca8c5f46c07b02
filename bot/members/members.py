"""Members: found by any identity (member number, external_userid, unionid, phone), created once,
merged without losing history."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.members import ledger
from bot.members.config import MembersConfig
from bot.members.errors import MemberError
from bot.members.models import Coupon, Member, MemberAudit, PointsLot
from bot.storage import utcnow

IDENTITIES = ("external_userid", "unionid", "phone")


async def find_member(session: AsyncSession, *, member_no: str | None = None, **identities: str | None) -> Member | None:
    """The active member behind any one identity; a merged record leads to the one it joined."""
    clauses = [getattr(Member, name) == value for name, value in identities.items() if value]
    if member_no:
        clauses.append(Member.member_no == member_no)
    if not clauses:
        return None
    member = await session.scalar(select(Member).where(or_(*clauses)).order_by(Member.id).limit(1))
    for _ in range(10):  # merges chain at most a few times; bounded against a cycle
        if member is None or member.merged_into_id is None:
            return member
        member = await session.get(Member, member.merged_into_id)
    return member


async def get_member(session: AsyncSession, member_no: str) -> Member:
    member = await find_member(session, member_no=member_no)
    if member is None:
        raise MemberError(404, "member_not_found", f"no member {member_no}")
    return member


async def create_member(
    session: AsyncSession, config: MembersConfig, *, source: str, external_userid: str | None = None,
    unionid: str | None = None, phone: str | None = None, name: str = "", level: str = "normal",
    birthday: dt.date | None = None, referrer_member_no: str | None = None, now: dt.datetime | None = None,
) -> tuple[Member, bool]:
    """The member with these identities, created (with the join and referral bonuses) if new."""
    identities = {"external_userid": external_userid, "unionid": unionid, "phone": phone}
    existing = await find_member(session, **identities)
    if existing is not None:
        await _link_identities(session, existing, identities)
        return existing, False
    referrer = None
    if referrer_member_no:
        referrer = await find_member(session, member_no=referrer_member_no)
        if referrer is None:
            raise MemberError(404, "referrer_not_found", f"no member {referrer_member_no} to credit the referral")
    now = now or utcnow()
    member = Member(member_no="M" + "".join(secrets.choice("0123456789") for _ in range(10)), source=source,
                    name=name, level=level, birthday=birthday, referrer_member_id=referrer and referrer.id,
                    stage="member", stage_changed_at=now, joined_at=now, points_balance=0, **identities)
    try:
        async with session.begin_nested():
            session.add(member)
            await session.flush()
    except IntegrityError:
        # Created by a concurrent request with the same identity: that one is the member.
        existing = await find_member(session, **identities)
        if existing is None:
            raise
        return existing, False
    if config.join_bonus_points:
        await ledger.credit(session, member, config.join_bonus_points, kind="earn", key=f"join:{member.id}",
                            valid_days=config.points_valid_days, reason="入会礼", now=now)
    if referrer is not None and config.referral_bonus_points:
        referrer = await ledger.lock_member(session, referrer.id)
        await ledger.credit(session, referrer, config.referral_bonus_points, kind="earn",
                            key=f"referral:{member.id}", valid_days=config.points_valid_days,
                            reason=f"推荐新会员 {member.member_no}", ref=f"member:{member.member_no}", now=now)
    return member, True


async def _link_identities(session: AsyncSession, member: Member, identities: dict[str, str | None]) -> None:
    """Record identities the member lacks (a phone given at a till…) unless another member has them."""
    for name, value in identities.items():
        if value and not getattr(member, name):
            if await session.scalar(select(Member.id).where(getattr(Member, name) == value)) is None:
                setattr(member, name, value)


async def merge_members(session: AsyncSession, *, keep_no: str, merge_no: str, actor: str) -> Member:
    """Fold `merge_no` into `keep_no`: its points (with their expiry), coupons and identities move;
    its ledger stays under its own id, marked merged, so the history is complete."""
    keep, gone = await get_member(session, keep_no), await get_member(session, merge_no)
    if keep.id == gone.id:  # the same number twice, or merged before: nothing to do (a state, not bad input)
        raise MemberError(409, "already_merged", f"{merge_no} is {keep_no}" if keep_no == merge_no
                          else f"{merge_no} is already merged into {keep_no}")
    # Lock in id order so two opposite merges cannot deadlock.
    first, second = sorted((keep.id, gone.id))
    locked = {first: await ledger.lock_member(session, first), second: await ledger.lock_member(session, second)}
    keep, gone = locked[keep.id], locked[gone.id]
    now = utcnow()
    await ledger.expire_due(session, gone, now)
    moved = gone.points_balance
    if moved:
        # Move lot by lot so the points keep their original expiry.
        lots = (await session.scalars(select(PointsLot).where(PointsLot.member_id == gone.id,
                                                              PointsLot.remaining > 0).order_by(PointsLot.id))).all()
        parts = [(lot.id, lot.remaining, lot.expires_at) for lot in lots]
        await ledger.debit(session, gone, moved, kind="merge", key=f"merge:out:{gone.id}",
                           reason=f"并入 {keep.member_no}", ref=f"member:{keep.member_no}", actor=actor, now=now)
        for lot_id, points, expires_at in parts:
            await ledger.credit(session, keep, points, kind="merge", key=f"merge:in:{gone.id}:{lot_id}",
                                valid_days=1, expires_at=expires_at, reason=f"合并 {gone.member_no}",
                                ref=f"member:{gone.member_no}", actor=actor, now=now)
    await session.execute(update(Coupon).where(Coupon.member_id == gone.id).values(member_id=keep.id))
    taken = {name: getattr(gone, name) for name in IDENTITIES if getattr(gone, name)}
    for name in IDENTITIES:
        setattr(gone, name, None)
    await session.flush()  # free the unique identities before the survivor takes them
    for name, value in taken.items():
        if not getattr(keep, name):
            setattr(keep, name, value)
    keep.purchase_count += gone.purchase_count
    keep.total_spent_fen += gone.total_spent_fen
    keep.last_purchase_at = max(filter(None, [keep.last_purchase_at, gone.last_purchase_at]), default=None)
    keep.first_purchase_at = min(filter(None, [keep.first_purchase_at, gone.first_purchase_at]), default=None)
    gone.status, gone.merged_into_id = "merged", keep.id
    details = {"merged": gone.member_no, "points": moved, "identities": taken}
    session.add(MemberAudit(member_id=keep.id, action="merge", actor=actor, details=details, at=now))
    session.add(MemberAudit(member_id=gone.id, action="merged_into", actor=actor,
                            details={"into": keep.member_no}, at=now))
    return keep
