"""The engine: enrolments from periodic scans of the domain tables (a customer bound, a member
joined, orders paid, coupons issued or expiring, birthdays, silence, a schedule), then each due
step checked (exit conditions, `when`, window) and grouped into one item per (guide, step, slot).

Enrolment scans read the tables other features already write, instead of hooking their code:
an occurrence enrols once (unique per template, customer and trigger key), so a scan that sees
it again, a second worker or a restart changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.customers.models import Customer
from bot.members.config import MembersConfig
from bot.members.lifecycle import stage_expression
from bot.members.models import Coupon, Order
from sop.audience import active_member, audience_conditions, member_join
from sop.engine.clock import at_local, corp_zone, local_day
from sop.engine.document import SopDocument, Step
from sop.engine.models import SopEnrolment, SopItem, SopRun, SopTemplate, SopVersion
from sop.outreach.models import OutreachSend

log = logging.getLogger("sop.engine")
# Each scan re-reads at least this span (an order reported late still enrols), and back to the
# previous scan of the template when that was longer ago (downtime): no occurrence is missed.
SCAN_LOOKBACK = dt.timedelta(days=3)
MAX_CATCH_UP_DAYS = 400  # day-based triggers (birthday, schedule) replay at most this many days


@dataclass
class TickReport:
    at: dt.datetime
    enrolled: int = 0
    items: int = 0
    queued: int = 0  # runs put into items
    skipped: dict[str, int] = field(default_factory=dict)
    exited: int = 0
    digests: int = 0

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count


def insert_for(session, model):
    return (sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert)(model)


def step_due(anchor: dt.datetime, step: Step, zone) -> dt.datetime:
    if step.at:
        day = local_day(anchor, zone) + dt.timedelta(days=step.after.days)
        return at_local(day, step.at, zone) + dt.timedelta(hours=step.after.hours, minutes=step.after.minutes)
    return anchor + step.after.delta()


class Versions:
    """Template documents by (code, version), parsed once per pass."""

    def __init__(self, session) -> None:
        self.session, self._cache = session, {}

    async def get(self, code: str, version: int) -> SopDocument:
        if (code, version) not in self._cache:
            raw = await self.session.scalar(select(SopVersion.document).where(
                SopVersion.code == code, SopVersion.version == version))
            self._cache[(code, version)] = SopDocument.model_validate(raw)
        return self._cache[(code, version)]


# Enrolment ---------------------------------------------------------------------------------------

def scan_since(template: SopTemplate, now: dt.datetime) -> dt.datetime:
    """Where this pass's scan starts: SCAN_LOOKBACK back, or further back to the template's last
    scan after downtime (never scanned: its creation), never before the template existed."""
    since = now - SCAN_LOOKBACK
    if template.scanned_until is None or template.scanned_until < since:
        since = template.scanned_until or template.created_at
    return max(template.created_at, since)


def scan_days(template: SopTemplate, now: dt.datetime, zone) -> list[dt.date]:
    """Local days a day-based trigger (birthday, schedule) looks at: today, and every day since
    the template's last scan that no pass saw (downtime) — at most MAX_CATCH_UP_DAYS."""
    today = local_day(now, zone)
    first = local_day(max(template.scanned_until or template.created_at, template.created_at), zone)
    first = max(first, today - dt.timedelta(days=MAX_CATCH_UP_DAYS))
    return [first + dt.timedelta(days=n) for n in range((today - first).days + 1)] if first <= today else [today]


def _scheduled(trigger, day: dt.date) -> bool:
    return bool((trigger.dates and day in trigger.dates) or (trigger.weekdays and day.isoweekday() in trigger.weekdays)
                or (trigger.monthdays and day.day in trigger.monthdays))


async def _candidates(session, template: SopTemplate, document: SopDocument, now: dt.datetime, zone,
                      members: MembersConfig) -> list[tuple]:
    """(customer_id, external_userid, member_id, stage, anchor, trigger_key) of occurrences since
    the scan start (see scan_since); already enrolled ones are dropped by the caller."""
    dialect = session.get_bind().dialect.name
    member = active_member()
    m = member.c
    stage = stage_expression(members, now, m)
    trigger = document.trigger
    since = scan_since(template, now)

    def base(*columns):
        statement = member_join(select(Customer.id, Customer.external_userid, m.id, stage, *columns), member)
        return statement.where(Customer.status == "bound", Customer.guide_userid.is_not(None),
                               *audience_conditions(document.audience, member, now=now, dialect=dialect,
                                                   members=members))

    event = trigger.event
    statements = []  # (statement, keyed): several for the day-based triggers' missed days
    if event == "friend_added":
        statement = base(Customer.bound_at).where(Customer.bound_at >= since, Customer.bound_at <= now)
        keyed = lambda at: (at, f"added:{int(at.timestamp())}")  # noqa: E731 — a re-add enrols again
    elif event == "member_joined":
        statement = base(m.joined_at).where(m.joined_at >= since, m.joined_at <= now)
        keyed = lambda at: (at, "joined")  # noqa: E731
    elif event == "first_purchase":
        statement = base(m.first_purchase_at).where(m.first_purchase_at >= since, m.first_purchase_at <= now)
        keyed = lambda at: (at, "first_purchase")  # noqa: E731
    elif event == "purchase":
        statement = base(Order.paid_at, Order.order_no).join(Order, and_(Order.member_id == m.id, Order.status == "paid")
                                                              ).where(Order.paid_at >= since, Order.paid_at <= now)
        keyed = lambda at, no: (at, f"order:{no}")  # noqa: E731
    elif event == "coupon_issued":
        statement = base(Coupon.issued_at, Coupon.code).join(Coupon, Coupon.member_id == m.id).where(
            Coupon.issued_at >= since, Coupon.issued_at <= now)
        keyed = lambda at, code: (at, f"coupon:{code}")  # noqa: E731
    elif event == "coupon_expiring":
        before = dt.timedelta(days=trigger.days_before)
        # Coupons whose reminder moment (valid_until - before) is now, or passed since the scan
        # start (downtime: their steps are then skipped as missed, with the reason).
        statement = base(Coupon.valid_until, Coupon.code).join(Coupon, Coupon.member_id == m.id).where(
            Coupon.status.in_(("issued", "expired")), Coupon.valid_until > min(now, since + before),
            Coupon.valid_until <= now + before)
        keyed = lambda until, code: (until - before, f"expiring:{code}")  # noqa: E731
    elif event in ("birthday", "schedule"):
        for day in scan_days(template, now, zone):
            midnight = at_local(day, "00:00", zone)
            if event == "birthday":
                target = day + dt.timedelta(days=trigger.days_before)
                month_day = func.strftime("%m-%d", m.birthday) if dialect == "sqlite" else func.to_char(m.birthday, "MM-DD")
                statements.append((base().where(month_day == target.strftime("%m-%d")),
                                   lambda midnight=midnight, year=target.year: (midnight, f"birthday:{year}")))
            elif _scheduled(trigger, day):
                statements.append((base(), lambda midnight=midnight, day=day: (midnight, f"schedule:{day.isoformat()}")))
    elif event == "no_purchase_for":
        silence = dt.timedelta(days=trigger.days)
        statement = base(m.last_purchase_at).where(m.last_purchase_at <= now - silence)
        keyed = lambda last: (last + silence, f"silent:{trigger.days}:{int(last.timestamp())}")  # noqa: E731
    else:  # stage_entered: keyed by when the stage began, so the nightly stage refresh enrols nobody twice
        statement = base(m.last_purchase_at, m.stage_changed_at, m.joined_at).where(stage == trigger.stage)
        keyed = lambda last, changed, joined: _stage_entry(trigger.stage, last, changed, joined, members, now)  # noqa: E731
    if event not in ("birthday", "schedule"):
        statements.append((statement, keyed))
    out = []
    for statement, keyed in statements:
        for customer_id, external_userid, member_id, current_stage, *extra in (await session.execute(statement)).all():
            anchor, key = keyed(*extra)
            # An occurrence from before the template existed enrols as of now, never into the past.
            out.append((customer_id, external_userid, member_id, current_stage,
                        anchor if anchor >= template.created_at else now, key))
    return out


def _stage_entry(stage: str, last_purchase, changed, joined, members, now) -> tuple[dt.datetime, str]:
    """(when the customer entered `stage`, trigger key): at_risk and dormant begin a fixed time
    after the last purchase (true before the nightly refresh stores it); others when stored."""
    if stage == "at_risk" and last_purchase is not None:
        at = last_purchase + dt.timedelta(days=members.at_risk_days)
    elif stage == "dormant" and last_purchase is not None:
        at = last_purchase + dt.timedelta(days=members.dormant_days)
    else:
        at = changed or joined or now
    return at, f"stage:{stage}:{int(at.timestamp())}"


async def _known(session, code: str, external_userids: list[str]) -> set[tuple[str, str]]:
    known = set()
    for start in range(0, len(external_userids), 2000):
        known |= set((await session.execute(select(SopEnrolment.external_userid, SopEnrolment.trigger_key).where(
            SopEnrolment.code == code, SopEnrolment.external_userid.in_(external_userids[start:start + 2000])))).all())
    return known


async def enrol(session, template: SopTemplate, document: SopDocument, now: dt.datetime, zone,
                members: MembersConfig) -> int:
    candidates = await _candidates(session, template, document, now, zone, members)
    # Occurrences already enrolled are dropped with one read, not one INSERT each, every minute.
    known = await _known(session, template.code, sorted({row[1] for row in candidates}))
    enrolled = 0
    for customer_id, external_userid, member_id, stage, anchor, key in candidates:
        if (external_userid, key[:80]) in known:
            continue
        statement = insert_for(session, SopEnrolment).values(
            code=template.code, version=template.version, trigger_key=key[:80], customer_id=customer_id,
            external_userid=external_userid, member_id=member_id, anchor_at=anchor, stage=stage, status="active",
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["code", "external_userid", "trigger_key"]).returning(SopEnrolment.id)
        enrolment_id = (await session.execute(statement)).scalar_one_or_none()
        if enrolment_id is None:
            continue  # already enrolled for this occurrence
        enrolled += 1
        await session.execute(insert_for(session, SopRun).values([dict(
            enrolment_id=enrolment_id, code=template.code, version=template.version, step_key=step.key,
            due_at=step_due(anchor, step, zone), status="waiting", external_userid=external_userid, updated_at=now)
            for step in document.steps]).on_conflict_do_nothing(index_elements=["enrolment_id", "step_key"]))
    return enrolled


async def expire_unpushed(session, now: dt.datetime, report: TickReport) -> None:
    """guide_push items whose window closed without a push: off the guide's list, reason recorded."""
    expired = (await session.scalars(update(SopItem).where(
        SopItem.reach == "guide_push", SopItem.status == "waiting", SopItem.deadline_at < now)
        .values(status="expired", acted_at=now).returning(SopItem.id))).all()
    if expired:
        await session.execute(update(SopRun).where(SopRun.item_id.in_(expired), SopRun.status == "queued")
                              .values(status="skipped", reason="not_pushed", updated_at=now))
        report.skip("not_pushed")


async def enrol_all(session, now: dt.datetime, zone, report: TickReport, members: MembersConfig) -> None:
    templates = (await session.scalars(select(SopTemplate).where(SopTemplate.status == "active")
                                       .order_by(SopTemplate.id))).all()
    versions = Versions(session)
    for template in templates:
        document = await versions.get(template.code, template.version)
        report.enrolled += await enrol(session, template, document, now, zone, members)
        if template.scanned_until is None or template.scanned_until < now:
            template.scanned_until = now  # the next scan starts here at the latest (see scan_since)


async def pending_guides(session) -> list[str]:
    """Guides with work waiting: items in their list, or SOP group sends not yet confirmed in WeCom
    (they get no notice per send: the morning card counts them)."""
    listed = select(SopItem.guide_userid).join(
        SopTemplate, and_(SopTemplate.code == SopItem.code, SopTemplate.status == "active")).where(SopItem.status == "waiting")
    unconfirmed = select(OutreachSend.guide_userid).where(
        OutreachSend.source.like("sop:%"), OutreachSend.status == "created", OutreachSend.task_status != 2)
    return sorted(set((await session.scalars(listed.union(unconfirmed))).all()))


def zone_of(services):
    return corp_zone(getattr(services, "settings", None))
