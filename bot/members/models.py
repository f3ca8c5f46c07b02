"""Members, points ledger, coupons and orders (tables).

Money is integer fen (分). The points balance lives on the member row and changes only together with
an appended ledger entry, under the member row lock, so reading it is one primary-key lookup.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import utcnow
from bot.storage.models import Base, BigId

MemberRef = BigInteger().with_variant(Integer(), "sqlite")


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_no: Mapped[str] = mapped_column(String(20), unique=True)
    external_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    level: Mapped[str] = mapped_column(String(20), default="normal")
    birthday: Mapped[dt.date | None]
    source: Mapped[str] = mapped_column(String(16))  # binding|integration|chat|order|admin
    referrer_member_id: Mapped[int | None] = mapped_column(MemberRef)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active|merged
    merged_into_id: Mapped[int | None] = mapped_column(MemberRef, index=True)
    points_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    purchase_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spent_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    first_purchase_at: Mapped[dt.datetime | None]
    last_purchase_at: Mapped[dt.datetime | None]
    stage: Mapped[str] = mapped_column(String(16), default="member")  # see lifecycle.STAGES
    stage_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    joined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PointsEntry(Base):
    """Append-only: never updated or deleted; the balance equals the sum of `points`."""

    __tablename__ = "points_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # earn|redeem|expire|adjust|reverse|merge
    points: Mapped[int] = mapped_column(BigInteger)  # signed
    balance_after: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    ref: Mapped[str | None] = mapped_column(String(80))  # order:<no>, coupon:<code>, entry:<id>
    actor: Mapped[str] = mapped_column(String(80), default="system")
    expires_at: Mapped[dt.datetime | None]  # earns: when these points lapse
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PointsLot(Base):
    """What is left of one credit; debits consume lots soonest-expiring first (FIFO)."""

    __tablename__ = "points_lots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"))
    expires_at: Mapped[dt.datetime]
    remaining: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_points_lots_member_expiry", "member_id", "expires_at"),
                      Index("ix_points_lots_expiry", "expires_at"))


class MemberAudit(Base):
    """Who did what to a member by hand (adjustments, merges, voids, issues)."""

    __tablename__ = "member_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    action: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(80))
    details: Mapped[dict] = mapped_column(default=dict)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CouponTemplate(Base):
    __tablename__ = "coupon_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(10))  # cash|discount|gift
    value_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # cash: amount off
    discount_percent: Mapped[int | None] = mapped_column(Integer)  # discount: 85 = pay 85 %
    gift_name: Mapped[str | None] = mapped_column(String(60))
    min_spend_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_days: Mapped[int | None] = mapped_column(Integer)  # from issue; or the fixed window below
    valid_from: Mapped[dt.datetime | None]
    valid_until: Mapped[dt.datetime | None]
    stock: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    issued_count: Mapped[int] = mapped_column(Integer, default=0)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    points_price: Mapped[int | None] = mapped_column(Integer)  # in the points mall when set
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Coupon(Base):
    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    template_code: Mapped[str] = mapped_column(ForeignKey("coupon_templates.code", onupdate="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    source: Mapped[str] = mapped_column(String(10))  # welcome|sop|campaign|mall|manual
    issue_key: Mapped[str] = mapped_column(String(120), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="issued")  # issued|redeemed|expired|void
    valid_from: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime]
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    redeemed_at: Mapped[dt.datetime | None]
    redeem_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    order_no: Mapped[str | None] = mapped_column(String(64))
    store_code: Mapped[str | None] = mapped_column(String(32))
    voided_at: Mapped[dt.datetime | None]
    void_reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_coupons_expiry", "status", "valid_until"),)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_no: Mapped[str] = mapped_column(String(64), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))  # a replay must carry the same body
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    external_userid: Mapped[str | None] = mapped_column(String(64))
    store_code: Mapped[str | None] = mapped_column(String(32))
    guide_userid: Mapped[str | None] = mapped_column(String(64), index=True)
    attribution: Mapped[str] = mapped_column(String(10))  # order|customer|none
    channel: Mapped[str] = mapped_column(String(10))  # store|online
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[list] = mapped_column(default=list)
    coupon_codes: Mapped[list] = mapped_column(default=list)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10), default="paid")  # paid|refunded
    paid_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    refunded_at: Mapped[dt.datetime | None]


class KfCursor(Base):
    """Where kf/sync_msg continues for one 微信客服 account; moves in the answering transaction."""

    __tablename__ = "kf_cursors"

    open_kfid: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(200), default="")
    synced_at: Mapped[dt.datetime | None]  # when the last committed sync began reading
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class KfMessage(Base):
    """A 微信客服 message taken in: a second sight of its msgid is ignored. Once answered, `reply` holds
    what to send ({} when nothing may be sent), so a retried send repeats it exactly."""

    __tablename__ = "kf_messages"

    msgid: Mapped[str] = mapped_column(String(64), primary_key=True)
    open_kfid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    intent: Mapped[str] = mapped_column(String(20))
    reply: Mapped[dict | None]
    handled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KfConversation(Base):
    """Per customer and account: WeCom's send window, and a pending points-mall confirmation."""

    __tablename__ = "kf_conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    open_kfid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    last_customer_message_at: Mapped[dt.datetime]
    sent_in_window: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[dict | None]

    __table_args__ = (UniqueConstraint("open_kfid", "external_userid", name="uq_kf_conversations_pair"),)
