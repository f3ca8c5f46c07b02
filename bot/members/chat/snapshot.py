"""What a batch of 微信客服 answers reads, in a few plain Core statements for all its customers.

The hot questions (balance, help, greeting) need each asker's member row with the points lapsing
soon, and their conversation: two statements for the whole batch, without ORM objects. Anything that writes (joining, the points mall) takes the general ORM path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.members import ledger
from bot.members.members import find_member
from bot.members.models import KfConversation, Member, PointsLot

_MEMBERS = Member.__table__
_LOTS = PointsLot.__table__
_CONVERSATIONS = KfConversation.__table__


@dataclass(frozen=True)
class MemberSnapshot:
    id: int
    member_no: str
    points_balance: int
    soon: int = 0  # points lapsing within the configured days
    first_soon: dt.datetime | None = None  # the first day some of them do


@dataclass
class Window:
    """One customer's conversation row: WeCom's send window and a pending points-mall confirmation."""

    open_kfid: str
    external_userid: str
    last_customer_message_at: dt.datetime
    sent_in_window: int = 0
    pending: dict | None = None
    id: int | None = None  # None: not in the database yet
    stored: tuple = field(default=(), repr=False)  # the values as read, to write back only changes

    def values(self) -> tuple:
        return self.last_customer_message_at, self.sent_in_window, self.pending

    @property
    def changed(self) -> bool:
        return self.values() != self.stored


async def members_of(session: AsyncSession, external_userids: list[str], soon_days: int,
                     now: dt.datetime) -> dict[str, MemberSnapshot]:
    """The active member behind each customer with their points lapsing within `soon_days`, in one
    statement (a merged record is followed as find_member does)."""
    if not external_userids:
        return {}
    lapsing = (_LOTS.c.member_id == _MEMBERS.c.id, _LOTS.c.remaining > 0, _LOTS.c.expires_at > now,
               _LOTS.c.expires_at <= now + dt.timedelta(days=soon_days))
    rows = (await session.execute(
        select(_MEMBERS.c.external_userid, _MEMBERS.c.id, _MEMBERS.c.member_no, _MEMBERS.c.points_balance,
               _MEMBERS.c.merged_into_id,
               select(func.sum(_LOTS.c.remaining)).where(*lapsing).scalar_subquery().label("soon"),
               select(func.min(_LOTS.c.expires_at)).where(*lapsing).scalar_subquery().label("first_soon"))
        .where(_MEMBERS.c.external_userid.in_(external_userids)))).all()
    found = {}
    for row in rows:
        if row.merged_into_id is None:
            found[row.external_userid] = MemberSnapshot(row.id, row.member_no, row.points_balance, int(row.soon or 0),
                                                        row.first_soon)
        else:  # rare: the merged record leads to the one it joined
            member = await find_member(session, external_userid=row.external_userid)
            if member is not None:
                soon, first = await ledger.expiring_soon(session, member.id, soon_days, now)
                found[row.external_userid] = MemberSnapshot(member.id, member.member_no, member.points_balance,
                                                            soon, first)
    return found


async def windows_of(session: AsyncSession, open_kfid: str, external_userids: list[str]) -> dict[str, Window]:
    if not external_userids:
        return {}
    rows = (await session.execute(select(_CONVERSATIONS).where(
        _CONVERSATIONS.c.open_kfid == open_kfid, _CONVERSATIONS.c.external_userid.in_(external_userids)))).all()
    windows = {}
    for row in rows:
        window = Window(open_kfid, row.external_userid, row.last_customer_message_at, row.sent_in_window,
                        row.pending, row.id)
        window.stored = window.values()
        windows[row.external_userid] = window
    return windows


async def save_windows(session: AsyncSession, db, windows: list[Window]) -> None:
    """New conversations in one INSERT, changed ones in one executemany UPDATE."""
    new = [w for w in windows if w.id is None]
    if new:
        await session.execute(db.insert(_CONVERSATIONS).on_conflict_do_nothing(
            index_elements=["open_kfid", "external_userid"]), [
            {"open_kfid": w.open_kfid, "external_userid": w.external_userid, "pending": w.pending,
             "last_customer_message_at": w.last_customer_message_at, "sent_in_window": w.sent_in_window}
            for w in new])
    changed = [w for w in windows if w.id is not None and w.changed]
    if changed:
        c = _CONVERSATIONS.c
        await session.execute(
            _CONVERSATIONS.update().where(c.id == bindparam("w_id")).values(
                last_customer_message_at=bindparam("w_last", type_=c.last_customer_message_at.type),
                sent_in_window=bindparam("w_sent"), pending=bindparam("w_pending", type_=c.pending.type)),
            [{"w_id": w.id, "w_last": w.last_customer_message_at, "w_sent": w.sent_in_window,
              "w_pending": w.pending} for w in changed])
