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

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.customers.models import Customer
from bot.members.config import members_config
from bot.members.lifecycle import stage_expression
from bot.members.models import Coupon, Member, Order
from sop.audience import Audience, active_member, audience_conditions, member_join, select_audience
from sop.engine.clock import DEFAULT_WINDOW, at_local, corp_zone, local_day, local_midnight, send_span
from sop.engine.document import SopDocument, Step, step_attachments
from sop.engine.models import SopEnrolment, SopItem, SopRun, SopTemplate, SopVersion
from sop.engine.outreach_adapter import GroupSend, plan_group_sends

log = logging.getLogger("sop.engine")
# A guide_push item can still be pushed (the guide then confirms it in WeCom) this long after its
# window closed — the morning card shows yesterday evening's — then it leaves their list.
PUSH_GRACE = dt.timedelta(days=2)
SCAN_LOOKBACK = dt.timedelta(days=3)  # longer downtime: events older than this are not enrolled


@dataclass
class TickReport:
    at: dt.datetime
    enrolled: int = 0
    items: int = 0
    queued: int = 0  # runs put into items
    skipped: dict[str, int] = field(default_factory=dict)
    exited: int = 0
    digests: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _insert(session, model):
    return (sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert)(model)


def window_of(document: SopDocument) -> tuple[str, str]:
    return (document.window.from_, document.window.to) if document.window else DEFAULT_WINDOW


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

async def _candidates(session, template: SopTemplate, document: SopDocument, now: dt.datetime, zone) -> list[tuple]:
    """(customer_id, external_userid, member_id, stage, anchor, trigger_key) of new occurrences."""
    dialect = session.get_bind().dialect.name
    member = active_member()
    m = member.c
    stage = stage_expression(members_config(), now, m)
    trigger = document.trigger
    # Events of the last SCAN_LOOKBACK only: each minute re-reads a bounded span, not all history.
    since = max(template.created_at, now - SCAN_LOOKBACK)

    def base(*columns):
        statement = member_join(select(Customer.id, Customer.external_userid, m.id, stage, *columns), member)
        return statement.where(Customer.status == "bound", Customer.guide_userid.is_not(None),
                               *audience_conditions(document.audience, member, now=now, dialect=dialect))

    event = trigger.event
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
        statement = base(Coupon.valid_until, Coupon.code).join(Coupon, Coupon.member_id == m.id).where(
            Coupon.status == "issued", Coupon.valid_until > now, Coupon.valid_until <= now + before)
        keyed = lambda until, code: (until - before, f"expiring:{code}")  # noqa: E731
    elif event == "birthday":
        target = local_day(now, zone) + dt.timedelta(days=trigger.days_before)
        month_day = func.strftime("%m-%d", m.birthday) if dialect == "sqlite" else func.to_char(m.birthday, "MM-DD")
        statement = base().where(month_day == target.strftime("%m-%d"))
        midnight = local_midnight(now, zone)
        keyed = lambda: (midnight, f"birthday:{target.year}")  # noqa: E731
    elif event == "no_purchase_for":
        silence = dt.timedelta(days=trigger.days)
        statement = base(m.last_purchase_at).where(m.last_purchase_at <= now - silence)
        keyed = lambda last: (last + silence, f"silent:{trigger.days}:{int(last.timestamp())}")  # noqa: E731
    elif event == "stage_entered":
        statement = base(m.stage_changed_at).where(stage == trigger.stage)
        keyed = lambda at: (at, f"stage:{trigger.stage}:{int(at.timestamp())}")  # noqa: E731
    else:  # schedule
        today = local_day(now, zone)
        if not ((trigger.dates and today in trigger.dates) or (trigger.weekdays and today.isoweekday() in trigger.weekdays)
                or (trigger.monthdays and today.day in trigger.monthdays)):
            return []
        statement = base()
        midnight = local_midnight(now, zone)
        keyed = lambda: (midnight, f"schedule:{today.isoformat()}")  # noqa: E731
    rows = (await session.execute(statement)).all()
    out = []
    for customer_id, external_userid, member_id, current_stage, *extra in rows:
        anchor, key = keyed(*extra)
        # An occurrence from before the template existed enrols as of now, never into the past.
        out.append((customer_id, external_userid, member_id, current_stage,
                    anchor if anchor >= template.created_at else now, key))
    return out


async def _known(session, code: str, external_userids: list[str]) -> set[tuple[str, str]]:
    known = set()
    for start in range(0, len(external_userids), 2000):
        known |= set((await session.execute(select(SopEnrolment.external_userid, SopEnrolment.trigger_key).where(
            SopEnrolment.code == code, SopEnrolment.external_userid.in_(external_userids[start:start + 2000])))).all())
    return known


async def enrol(session, template: SopTemplate, document: SopDocument, now: dt.datetime, zone) -> int:
    candidates = await _candidates(session, template, document, now, zone)
    # Occurrences already enrolled are dropped with one read, not one INSERT each, every minute.
    known = await _known(session, template.code, sorted({row[1] for row in candidates}))
    enrolled = 0
    for customer_id, external_userid, member_id, stage, anchor, key in candidates:
        if (external_userid, key[:80]) in known:
            continue
        statement = _insert(session, SopEnrolment).values(
            code=template.code, version=template.version, trigger_key=key[:80], customer_id=customer_id,
            external_userid=external_userid, member_id=member_id, anchor_at=anchor, stage=stage, status="active",
            created_at=now,
        ).on_conflict_do_nothing(index_elements=["code", "external_userid", "trigger_key"]).returning(SopEnrolment.id)
        enrolment_id = (await session.execute(statement)).scalar_one_or_none()
        if enrolment_id is None:
            continue  # already enrolled for this occurrence
        enrolled += 1
        await session.execute(_insert(session, SopRun).values([dict(
            enrolment_id=enrolment_id, code=template.code, version=template.version, step_key=step.key,
            due_at=step_due(anchor, step, zone), status="waiting", external_userid=external_userid, updated_at=now)
            for step in document.steps]).on_conflict_do_nothing(index_elements=["enrolment_id", "step_key"]))
    return enrolled


# Checks at send time ---------------------------------------------------------------------------

async def exit_reason(session, enrolment: SopEnrolment, exits: list[str], now: dt.datetime) -> str | None:
    """The first exit condition that holds now, or None."""
    anchor = enrolment.anchor_at
    if "unfriended" in exits:
        status = await session.scalar(select(Customer.status).where(Customer.external_userid == enrolment.external_userid))
        if status != "bound":
            return "unfriended"
    member_id = enrolment.member_id or await session.scalar(select(Member.id).where(
        Member.external_userid == enrolment.external_userid, Member.status == "active"))
    if "purchased" in exits and member_id is not None:
        trigger_order = enrolment.trigger_key.removeprefix("order:") if enrolment.trigger_key.startswith("order:") else None
        bought = select(Order.id).where(Order.member_id == member_id, Order.status == "paid", Order.paid_at > anchor,
                                        Order.paid_at <= now)
        if trigger_order:
            bought = bought.where(Order.order_no != trigger_order)
        if await session.scalar(bought.limit(1)) is not None:
            return "purchased"
    if "coupon_redeemed" in exits and member_id is not None:
        if await session.scalar(select(Coupon.id).where(
                Coupon.member_id == member_id, Coupon.redeemed_at > anchor, Coupon.redeemed_at <= now).limit(1)):
            return "coupon_redeemed"
    if "stage_changed" in exits and member_id is not None and enrolment.stage is not None:
        now_stage = await session.scalar(select(stage_expression(members_config(), now, Member)).where(Member.id == member_id))
        if now_stage != enrolment.stage:
            return "stage_changed"
    return None


async def matches(session, audience: Audience, external_userid: str, now: dt.datetime) -> bool:
    statement = select_audience(audience, now=now, dialect=session.get_bind().dialect.name)
    return await session.scalar(statement.where(Customer.external_userid == external_userid).limit(1)) is not None


async def _exit(session, enrolment: SopEnrolment, reason: str, now: dt.datetime) -> None:
    enrolment.status, enrolment.exit_reason, enrolment.exited_at = "exited", reason, now
    await session.execute(update(SopRun).where(SopRun.enrolment_id == enrolment.id, SopRun.status == "waiting")
                          .values(status="exited", reason=reason, updated_at=now))


async def screen(session, run: SopRun, enrolment: SopEnrolment, document: SopDocument, step: Step,
                 now: dt.datetime) -> str | None:
    """Why this run must not go out now (exited / when_not_met), or None."""
    if enrolment.status == "exited":
        return f"exited:{enrolment.exit_reason}"
    reason = await exit_reason(session, enrolment, document.exit_on, now)
    if reason:
        await _exit(session, enrolment, reason, now)
        return f"exited:{reason}"
    if step.when is not None and not await matches(session, step.when, run.external_userid, now):
        return "when_not_met"
    return None


IN_CHUNK = 2000  # ids per IN (…) list


async def _matching(session, statement_for, ids: list) -> set:
    found = set()
    for start in range(0, len(ids), IN_CHUNK):
        found |= set((await session.scalars(statement_for(ids[start:start + IN_CHUNK]))).all())
    return found


async def screen_all(session, candidates: list[tuple], now: dt.datetime) -> dict[int, str]:
    """screen() for a whole pass in a few set queries: run id → why it must not go out now."""
    reasons: dict[int, str] = {}
    open_enrolments: dict[int, tuple] = {}
    for run, enrolment, document, _ in candidates:
        if enrolment.status == "exited":
            reasons[run.id] = f"exited:{enrolment.exit_reason}"
        else:
            open_enrolments[enrolment.id] = (enrolment, document.exit_on)
    member = and_(Member.external_userid == SopEnrolment.external_userid, Member.status == "active")
    checks = {
        "unfriended": lambda ids: select(SopEnrolment.id).outerjoin(
            Customer, Customer.external_userid == SopEnrolment.external_userid).where(
            SopEnrolment.id.in_(ids), or_(Customer.id.is_(None), Customer.status != "bound")),
        # Strictly after the anchor: a purchase trigger's own order is paid at the anchor.
        "purchased": lambda ids: select(SopEnrolment.id).join(Member, member).join(Order, and_(
            Order.member_id == Member.id, Order.status == "paid", Order.paid_at > SopEnrolment.anchor_at,
            Order.paid_at <= now)).where(SopEnrolment.id.in_(ids)).distinct(),
        "coupon_redeemed": lambda ids: select(SopEnrolment.id).join(Member, member).join(Coupon, and_(
            Coupon.member_id == Member.id, Coupon.redeemed_at > SopEnrolment.anchor_at, Coupon.redeemed_at <= now))
        .where(SopEnrolment.id.in_(ids)).distinct(),
        "stage_changed": lambda ids: select(SopEnrolment.id).join(Member, member).where(
            SopEnrolment.id.in_(ids), SopEnrolment.stage.is_not(None),
            stage_expression(members_config(), now, Member) != SopEnrolment.stage),
    }
    exited: dict[int, str] = {}
    for condition, statement_for in checks.items():  # the order exit_reason() checks them in
        ids = sorted(i for i, (_, exits) in open_enrolments.items() if condition in exits and i not in exited)
        if ids:
            for enrolment_id in await _matching(session, statement_for, ids):
                exited.setdefault(enrolment_id, condition)
    for enrolment_id, condition in exited.items():
        await _exit(session, open_enrolments[enrolment_id][0], condition, now)
    wanted: dict[tuple, tuple[Step, list]] = {}
    for run, enrolment, _, step in candidates:
        if run.id in reasons:
            continue
        if enrolment.id in exited:
            reasons[run.id] = f"exited:{exited[enrolment.id]}"
        elif step.when is not None:
            wanted.setdefault((run.code, run.version, step.key), (step, []))[1].append(run)
    dialect = session.get_bind().dialect.name
    for step, runs in wanted.values():
        audience = select_audience(step.when, now=now, dialect=dialect).order_by(None)
        matched = await _matching(session, lambda chunk, audience=audience: audience.where(
            Customer.external_userid.in_(chunk)), sorted({run.external_userid for run in runs}))
        for run in runs:
            if run.external_userid not in matched:
                reasons[run.id] = "when_not_met"
    return reasons


def mark(run: SopRun, reason: str, now: dt.datetime) -> None:
    """exited:<condition> → exited with the condition; anything else → skipped with the reason."""
    if reason.startswith("exited:"):
        run.status, run.reason = "exited", reason.removeprefix("exited:")
    else:
        run.status, run.reason = "skipped", reason[:60]
    run.updated_at = now


# Materialising due steps ---------------------------------------------------------------------------

def step_of(document: SopDocument, key: str) -> Step:
    return next(step for step in document.steps if step.key == key)


def content_for(step: Step, store_code: str | None) -> dict:
    content = (step.overrides or {}).get(store_code or "") or step.content
    return {"text": content.text or "", "attachments": step_attachments(step, content)}


async def _item(session, *, code, version, step: Step, slot, guide, store, now, deadline, status) -> SopItem:
    values = dict(code=code, version=version, step_key=step.key, slot=slot, guide_userid=guide, store_code=store,
                  reach=step.reach, status=status, customers=0, due_at=now, deadline_at=deadline, created_at=now)
    await session.execute(_insert(session, SopItem).values(**values).on_conflict_do_nothing(
        index_elements=["code", "version", "step_key", "slot", "guide_userid"]))
    return await session.scalar(select(SopItem).where(
        SopItem.code == code, SopItem.version == version, SopItem.step_key == step.key, SopItem.slot == slot,
        SopItem.guide_userid == guide).with_for_update())


def group_send(item: SopItem, document: SopDocument, step: Step, runs: list[SopRun]) -> GroupSend:
    item.source = f"sop:{item.id}"
    return GroupSend(source=item.source, title=f"{document.name}·{step.key}", guide=item.guide_userid,
                     external_userids=[run.external_userid for run in runs], content=content_for(step, item.store_code),
                     coupon_template_code=step.benefit.coupon_template_code if step.benefit else None,
                     holdout_percent=document.holdout_percent, holdout_salt=f"sop:{item.code}")


async def send_items(session, batch: list[tuple[SopItem, SopDocument, Step, list[SopRun]]], now: dt.datetime) -> None:
    """Each item's one group send (all its runs' customers), planned together in this transaction."""
    outcome = await plan_group_sends(session, [group_send(*entry) for entry in batch], now)
    for item, _, _, runs in batch:
        statuses = outcome[item.source]
        for run in runs:
            status = statuses.get(run.external_userid, "skipped")
            run.status, run.reason = ("sent", None) if status == "planned" else ("skipped", status)
            run.item_id, run.updated_at = item.id, now
        item.status, item.acted_at = "pushed", now


async def send_item(session, item: SopItem, document: SopDocument, step: Step, runs: list[SopRun],
                    now: dt.datetime) -> None:
    await send_items(session, [(item, document, step, runs)], now)


async def materialise(session, now: dt.datetime, zone, report: TickReport) -> None:
    versions = Versions(session)
    due = (await session.execute(
        select(SopRun, SopEnrolment, Customer.guide_userid, Customer.store_code)
        .join(SopEnrolment, SopEnrolment.id == SopRun.enrolment_id)
        .join(SopTemplate, and_(SopTemplate.code == SopRun.code, SopTemplate.status == "active"))
        .outerjoin(Customer, Customer.external_userid == SopRun.external_userid)
        .where(SopRun.status == "waiting", SopRun.due_at <= now)
        .order_by(SopRun.id).with_for_update(of=SopRun, skip_locked=True))).all()
    groups: dict[tuple, list[SopRun]] = {}
    deadlines: dict[int, dt.datetime] = {}
    candidates = []
    for run, enrolment, guide, store in due:
        document = await versions.get(run.code, run.version)
        step = step_of(document, run.step_key)
        earliest, deadline = send_span(run.due_at, window_of(document), zone)
        if now < earliest:
            continue  # quiet hours: waits for the window
        run.guide_userid, run.store_code = guide, store  # the customer's guide now (after handovers)
        if now > deadline:  # downtime past the window: skipped, never sent late at night
            mark(run, f"missed_window:{deadline.isoformat()}", now)
            report.skip("missed_window")
            continue
        deadlines[run.id] = deadline
        candidates.append((run, enrolment, document, step))
    reasons = await screen_all(session, candidates, now)
    for run, _, _, _ in candidates:
        reason = reasons.get(run.id) or (None if run.guide_userid else "no_guide")
        if reason:
            mark(run, reason, now)
            if run.status == "exited":
                report.exited += 1
            else:
                report.skip(reason.split(":")[0])
            continue
        key = (run.code, run.version, run.step_key, run.guide_userid)
        groups.setdefault(key, []).append(run)
        deadlines[key] = min(deadlines.get(key, deadlines[run.id]), deadlines[run.id])
    minute = now.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
    sending = {key: runs for key, runs in groups.items()
               if step_of(await versions.get(key[0], key[1]), key[2]).reach == "group_send"}
    items = await _group_items(session, sending, deadlines, minute, now)
    batch = []
    for key, runs in sending.items():
        item = items[key]
        if item.status != "sending":
            continue  # another pass of this minute sent it
        document = await versions.get(key[0], key[1])
        item.customers = len(runs)
        batch.append((item, document, step_of(document, key[2]), runs))
        report.items += 1
        report.queued += len(runs)
    await send_items(session, batch, now)
    for (code, version, step_key, guide), runs in groups.items():
        if (code, version, step_key, guide) in sending:
            continue
        step = step_of(await versions.get(code, version), step_key)
        store = runs[0].store_code
        # One waiting entry per step and day in the guide's list; a later batch that day joins it.
        slot = now.astimezone(zone).strftime("%Y-%m-%d")
        item = await _item(session, code=code, version=version, step=step, slot=slot, guide=guide, store=store,
                           now=now, deadline=deadlines[(code, version, step_key, guide)], status="waiting")
        if item.status != "waiting":
            item = await _item(session, code=code, version=version, step=step, slot=minute, guide=guide,
                               store=store, now=now, deadline=deadlines[(code, version, step_key, guide)],
                               status="waiting")
        item.customers += len(runs)
        item.deadline_at = max(item.deadline_at, deadlines[(code, version, step_key, guide)] + PUSH_GRACE)
        for run in runs:
            run.status, run.item_id, run.updated_at = "queued", item.id, now
        report.items += 1
        report.queued += len(runs)


async def _group_items(session, groups: dict[tuple, list[SopRun]], deadlines: dict, minute: str,
                       now: dt.datetime) -> dict[tuple, SopItem]:
    """The group_send items of this minute, created together (an existing one is kept as it is)."""
    if not groups:
        return {}
    rows = [dict(code=code, version=version, step_key=step_key, slot=minute, guide_userid=guide,
                 store_code=runs[0].store_code, reach="group_send", status="sending", customers=0, due_at=now,
                 deadline_at=deadlines[(code, version, step_key, guide)], created_at=now)
            for (code, version, step_key, guide), runs in groups.items()]
    for start in range(0, len(rows), 500):
        await session.execute(_insert(session, SopItem).values(rows[start:start + 500]).on_conflict_do_nothing(
            index_elements=["code", "version", "step_key", "slot", "guide_userid"]))
    found = {}
    for code in {key[0] for key in groups}:
        items = (await session.scalars(select(SopItem).where(SopItem.code == code, SopItem.slot == minute,
                                                             SopItem.reach == "group_send").with_for_update())).all()
        found.update({(item.code, item.version, item.step_key, item.guide_userid): item for item in items})
    return found


async def expire_unpushed(session, now: dt.datetime, report: TickReport) -> None:
    """guide_push items whose window closed without a push: off the guide's list, reason recorded."""
    expired = (await session.scalars(update(SopItem).where(
        SopItem.reach == "guide_push", SopItem.status == "waiting", SopItem.deadline_at < now)
        .values(status="expired", acted_at=now).returning(SopItem.id))).all()
    if expired:
        await session.execute(update(SopRun).where(SopRun.item_id.in_(expired), SopRun.status == "queued")
                              .values(status="skipped", reason="not_pushed", updated_at=now))
        report.skip("not_pushed")


async def enrol_all(session, now: dt.datetime, zone, report: TickReport) -> None:
    templates = (await session.scalars(select(SopTemplate).where(SopTemplate.status == "active")
                                       .order_by(SopTemplate.id))).all()
    versions = Versions(session)
    for template in templates:
        document = await versions.get(template.code, template.version)
        report.enrolled += await enrol(session, template, document, now, zone)


async def pending_guides(session) -> list[str]:
    return list((await session.scalars(
        select(SopItem.guide_userid).join(SopTemplate, and_(SopTemplate.code == SopItem.code,
                                                             SopTemplate.status == "active"))
        .where(SopItem.status == "waiting").distinct().order_by(SopItem.guide_userid))).all())


def zone_of(services):
    return corp_zone(getattr(services, "settings", None))
