"""Due steps turned into items, in set statements: no run or enrolment passes through Python, so
100,000 due steps cost a few dozen statements whatever the number of guides.

Per active template version, with the window of its document and the clock of this pass:
  - due before the last window close → skipped `missed_window:<deadline>` (downtime, a pause):
    never sent late at night;
  - due since then, while the window is open → screened (exit conditions, then `when`, then a
    guide) and put into items: one group send per (guide, step, minute) planned at once, or one
    waiting entry per (guide, step, day) in the guide's list;
  - otherwise they wait (quiet hours).
The caller holds the tick and planning locks, so no other pass changes these rows meanwhile.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, case, exists, func, literal, select, update

from bot.customers.models import Customer
from bot.members.config import MembersConfig
from bot.members.lifecycle import stage_expression
from bot.members.models import Coupon, Member, Order
from sop.audience import select_audience
from sop.engine.clock import DEFAULT_WINDOW, at_local, local_day, send_span
from sop.engine.document import SopDocument, Step
from sop.engine.engine import TickReport, Versions, insert_for
from sop.engine.models import SopEnrolment, SopItem, SopRun, SopTemplate
from sop.outreach.config import OutreachConfig

# A guide_push item can still be pushed (the guide then confirms it in WeCom) this long after its
# window closed — the morning card shows yesterday evening's — then it leaves their list.
PUSH_GRACE = dt.timedelta(days=2)
EXIT_ORDER = ("unfriended", "purchased", "coupon_redeemed", "stage_changed")  # the first that holds is recorded


def window_of(document: SopDocument) -> tuple[str, str]:
    return (document.window.from_, document.window.to) if document.window else DEFAULT_WINDOW


class Window:
    """Today's window of one template version, seen from `now`."""

    def __init__(self, document: SopDocument, now: dt.datetime, zone) -> None:
        self.hours, today = window_of(document), local_day(now, zone)
        self.opens, self.closes = at_local(today, self.hours[0], zone), at_local(today, self.hours[1], zone)
        # Steps due up to the last close before now had their whole window: they are missed.
        self.last_close = self.closes if now > self.closes else at_local(today - dt.timedelta(days=1), self.hours[1], zone)
        self.open_now = self.opens <= now <= self.closes


def step_of(document: SopDocument, key: str) -> Step:
    return next(step for step in document.steps if step.key == key)


# Screening: exits, `when`, the guide ---------------------------------------------------------------

def customer_now() -> dict:
    """Values for a run that is skipped or exited: its customer's guide and store now, so the
    statistics by guide and store count it (a run sent takes them in _assign)."""
    def of_customer(column):
        return select(column).where(Customer.external_userid == SopRun.external_userid).scalar_subquery()

    return {"guide_userid": of_customer(Customer.guide_userid), "store_code": of_customer(Customer.store_code)}


def exit_condition(condition: str, now: dt.datetime, members: MembersConfig):
    """A WHERE over sop_enrolments that holds when the enrolment must end for this condition."""
    member = and_(Member.external_userid == SopEnrolment.external_userid, Member.status == "active")
    if condition == "unfriended":
        return ~exists().where(Customer.external_userid == SopEnrolment.external_userid, Customer.status == "bound")
    if condition == "purchased":  # strictly after the anchor, and not a purchase trigger's own order
        return exists().where(member, Order.member_id == Member.id, Order.status == "paid",
                              Order.paid_at > SopEnrolment.anchor_at, Order.paid_at <= now,
                              literal("order:") + Order.order_no != SopEnrolment.trigger_key)
    if condition == "coupon_redeemed":
        return exists().where(member, Coupon.member_id == Member.id, Coupon.redeemed_at > SopEnrolment.anchor_at,
                              Coupon.redeemed_at <= now)
    return and_(SopEnrolment.stage.is_not(None), exists().where(
        member, stage_expression(members, now, Member) != SopEnrolment.stage))


async def apply_exits(session, code: str, exit_on: list[str], runs: list, now: dt.datetime,
                      members: MembersConfig) -> int:
    """End the enrolments of these runs whose exit condition holds (their waiting steps with
    them) and mark these runs exited; returns how many of these runs exited."""
    chosen = select(SopRun.enrolment_id).where(*runs)
    for condition in (name for name in EXIT_ORDER if name in exit_on):
        ended = await session.execute(
            update(SopEnrolment).where(SopEnrolment.code == code, SopEnrolment.status == "active",
                                       SopEnrolment.id.in_(chosen), exit_condition(condition, now, members))
            .values(status="exited", exit_reason=condition, exited_at=now).execution_options(synchronize_session=False))
        if ended.rowcount:
            await session.execute(
                update(SopRun).where(SopRun.code == code, SopRun.status == "waiting", SopRun.enrolment_id.in_(
                    select(SopEnrolment.id).where(SopEnrolment.code == code, SopEnrolment.exit_reason == condition,
                                                  SopEnrolment.exited_at == now)))
                .values(status="exited", reason=condition, updated_at=now, **customer_now())
                .execution_options(synchronize_session=False))
    reason = select(SopEnrolment.exit_reason).where(SopEnrolment.id == SopRun.enrolment_id).scalar_subquery()
    exited = await session.execute(
        update(SopRun).where(*runs, exists().where(SopEnrolment.id == SopRun.enrolment_id,
                                                   SopEnrolment.status == "exited"))
        .values(status="exited", reason=reason, updated_at=now, **customer_now()).execution_options(synchronize_session=False))
    return exited.rowcount


async def apply_when(session, step: Step, runs: list, now: dt.datetime, members: MembersConfig) -> int:
    """Skip these runs of `step` whose customer is outside its `when` audience right now."""
    if step.when is None:
        return 0
    audience = select_audience(step.when, members, now=now, dialect=session.get_bind().dialect.name).order_by(None)
    skipped = await session.execute(
        update(SopRun).where(*runs, SopRun.step_key == step.key,
                             ~exists(audience.where(Customer.external_userid == SopRun.external_userid)))
        .values(status="skipped", reason="when_not_met", updated_at=now, **customer_now())
        .execution_options(synchronize_session=False))
    return skipped.rowcount


async def skip_without_guide(session, runs: list, now: dt.datetime) -> int:
    """Runs whose customer has no guide (or no record) now: skipped, no_guide."""
    skipped = await session.execute(
        update(SopRun).where(*runs, ~exists().where(Customer.external_userid == SopRun.external_userid,
                                                    Customer.guide_userid.is_not(None)))
        .values(status="skipped", reason="no_guide", updated_at=now, **customer_now()).execution_options(synchronize_session=False))
    return skipped.rowcount


# Missed windows -------------------------------------------------------------------------------------

async def skip_missed(session, code: str, version: int, window: Window, now: dt.datetime, zone) -> int:
    """Runs whose window closed before now: skipped with the deadline they missed — one UPDATE
    per local day of deadlines (a run due after a day's close belongs to the next day's window)."""
    base = (SopRun.status == "waiting", SopRun.code == code, SopRun.version == version,
            SopRun.due_at <= window.last_close)
    earliest = await session.scalar(select(func.min(SopRun.due_at)).where(*base))
    if earliest is None:
        return 0
    skipped = 0
    deadline = send_span(earliest, window.hours, zone)[1]
    while deadline <= window.last_close:
        previous = at_local(local_day(deadline, zone) - dt.timedelta(days=1), window.hours[1], zone)
        result = await session.execute(
            update(SopRun).where(*base, SopRun.due_at > previous, SopRun.due_at <= deadline)
            .values(status="skipped", reason=f"missed_window:{deadline.isoformat()}", updated_at=now, **customer_now())
            .execution_options(synchronize_session=False))
        skipped += result.rowcount
        deadline = at_local(local_day(deadline, zone) + dt.timedelta(days=1), window.hours[1], zone)
    return skipped


# Items ---------------------------------------------------------------------------------------------

def _item_rows(code: str, version: int, step: Step, slot: str, status: str, runs: list, now: dt.datetime,
               deadline: dt.datetime, customers):
    """SELECT of one item row per guide (the customer's guide now, after handovers) of these runs
    (for INSERT … SELECT)."""
    return (select(literal(code), literal(version), literal(step.key), literal(slot), Customer.guide_userid,
                   func.min(Customer.store_code), literal(step.reach), literal(status), customers,
                   literal(now, SopItem.due_at.type), literal(deadline, SopItem.deadline_at.type),
                   literal(now, SopItem.created_at.type))
            .select_from(SopRun).join(Customer, Customer.external_userid == SopRun.external_userid)
            .where(*runs, Customer.guide_userid.is_not(None)).group_by(Customer.guide_userid))


ITEM_COLUMNS = ["code", "version", "step_key", "slot", "guide_userid", "store_code", "reach", "status", "customers",
                "due_at", "deadline_at", "created_at"]
ITEM_KEY = ["code", "version", "step_key", "slot", "guide_userid"]


def _of_slot(code: str, version: int, step: Step, slot: str):
    return (SopItem.code == code, SopItem.version == version, SopItem.step_key == step.key, SopItem.slot == slot)


async def _assign(session, runs: list, items: tuple, now: dt.datetime, status: str = "queued") -> int:
    """Put these runs into their customer's guide's item among `items` (one per guide), taking
    that guide and store: one UPDATE … FROM, joined on the items' whole unique key."""
    result = await session.execute(
        update(SopRun).where(*runs, Customer.external_userid == SopRun.external_userid, *items,
                             SopItem.guide_userid == Customer.guide_userid)
        .values(item_id=SopItem.id, guide_userid=Customer.guide_userid, store_code=Customer.store_code, status=status,
                updated_at=now).execution_options(synchronize_session=False))
    return result.rowcount


async def group_send_items(session, code: str, version: int, step: Step, runs: list, minute: str,
                           window: Window, now: dt.datetime) -> tuple[int, int]:
    """One item per guide for this minute, their runs queued into it; (items, runs). An item of
    this minute that is already sent is left alone (its runs wait for the next minute)."""
    created = await session.execute(insert_for(session, SopItem).from_select(
        ITEM_COLUMNS, _item_rows(code, version, step, minute, "sending", runs, now, window.closes, func.count()))
        .on_conflict_do_nothing(index_elements=ITEM_KEY))
    queued = await _assign(session, runs, (*_of_slot(code, version, step, minute), SopItem.status == "sending"), now,
                           status="planning")
    return created.rowcount, queued


async def guide_items(session, code: str, version: int, step: Step, runs: list, slot_day: str, minute: str,
                      window: Window, now: dt.datetime) -> tuple[int, int]:
    """One waiting entry per guide and day in their list (a later batch that day joins it; if the
    day's entry was already pushed or done, a new entry for this minute); (items, runs)."""
    deadline = window.closes + PUSH_GRACE
    waiting_today = (*_of_slot(code, version, step, slot_day), SopItem.status == "waiting")
    await session.execute(insert_for(session, SopItem).from_select(
        ITEM_COLUMNS, _item_rows(code, version, step, slot_day, "waiting", runs, now, deadline, literal(0)))
        .on_conflict_do_nothing(index_elements=ITEM_KEY))
    queued = await _assign(session, runs, waiting_today, now)
    await session.execute(insert_for(session, SopItem).from_select(
        ITEM_COLUMNS, _item_rows(code, version, step, minute, "waiting", runs, now, deadline, literal(0)))
        .on_conflict_do_nothing(index_elements=ITEM_KEY))
    queued += await _assign(session, runs, (*_of_slot(code, version, step, minute), SopItem.status == "waiting"), now)
    counted = select(func.count()).select_from(SopRun).where(SopRun.item_id == SopItem.id).scalar_subquery()
    touched = await session.execute(
        update(SopItem).where(SopItem.code == code, SopItem.version == version, SopItem.step_key == step.key,
                              SopItem.slot.in_((slot_day, minute)), SopItem.status == "waiting")
        .values(customers=counted, deadline_at=case((SopItem.deadline_at < deadline, literal(deadline, SopItem.deadline_at.type)),
                                                    else_=SopItem.deadline_at))
        .execution_options(synchronize_session=False))
    return touched.rowcount, queued


async def due_versions(session, now: dt.datetime) -> list[tuple[str, int, str]]:
    """(code, version, step_key) of active templates with steps due by now."""
    rows = await session.execute(
        select(SopRun.code, SopRun.version, SopRun.step_key).where(SopRun.status == "waiting", SopRun.due_at <= now)
        .where(SopRun.code.in_(select(SopTemplate.code).where(SopTemplate.status == "active")))
        .distinct().order_by(SopRun.code, SopRun.version, SopRun.step_key))
    return [tuple(row) for row in rows]


async def materialise(session, now: dt.datetime, zone, report: TickReport, *, members: MembersConfig,
                      outreach: OutreachConfig) -> None:
    """Every active template's due steps, step by step (see the module's docstring)."""
    from sop.engine.outreach_adapter import plan_items

    versions = Versions(session)
    minute, day = now.astimezone(zone).strftime("%Y-%m-%dT%H:%M"), now.astimezone(zone).strftime("%Y-%m-%d")
    due = await due_versions(session, now)
    for code, version in dict.fromkeys((code, version) for code, version, _ in due):
        document = await versions.get(code, version)
        window = Window(document, now, zone)
        report.skip("missed_window", await skip_missed(session, code, version, window, now, zone))
        if not window.open_now:
            continue  # quiet hours: what is due waits for the window
        runs = [SopRun.status == "waiting", SopRun.code == code, SopRun.version == version,
                SopRun.due_at > window.last_close, SopRun.due_at <= now]
        report.exited += await apply_exits(session, code, document.exit_on, runs, now, members)
        for step in document.steps:
            report.skip("when_not_met", await apply_when(session, step, runs, now, members))
        report.skip("no_guide", await skip_without_guide(session, runs, now))
        for step_key in [key for c, v, key in due if (c, v) == (code, version)]:
            step = step_of(document, step_key)
            of_step = [*runs, SopRun.step_key == step.key]
            if step.reach == "group_send":
                items, queued = await group_send_items(session, code, version, step, of_step, minute, window, now)
                counts = await plan_items(session, document, step, _of_slot(code, version, step, minute), now, outreach)
                for outcome, count in counts.items():
                    if outcome != "planned":
                        report.skip(outcome, count)
            else:
                items, queued = await guide_items(session, code, version, step, of_step, day, minute, window, now)
            report.items += items
            report.queued += queued
