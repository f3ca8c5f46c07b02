"""SOP templates API: create, edit (a new version), read, list, pause, resume, preview a step for
one customer, dry run; and completion statistics per step, by store or guide.

A refused template is a 422 naming the field, with nothing saved.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, case, func, or_, select, true

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api, read_json_body
from bot.customers.models import Customer
from bot.members.config import MembersConfig
from bot.members.models import Order
from bot.storage import utcnow
from sop.engine import templates
from sop.engine.config import SopConfig
from sop.engine.document import SopDocument, SopInvalid
from sop.engine.dryrun import dry_run
from sop.engine.engine import Versions, zone_of
from sop.engine.materialise import step_of
from sop.engine.models import SopItem, SopRun, SopTemplate, SopVersion
from sop.engine.outreach_adapter import content_for
from sop.engine.tick import render_for_customer
from sop.outreach.models import OutreachRecipient, OutreachSend

WRITERS = [Role.HQ_ADMIN]
READERS = [Role.HQ_ADMIN, Role.STORE_MANAGER]
ATTRIBUTION_DAYS = 7


def refused(exc: SopInvalid) -> ApiError:
    return ApiError(422, "invalid_template", f"{exc.field}: {exc.problem}", [{"field": exc.field, "problem": exc.problem}])


class SopOut(BaseModel):
    code: str
    name: str
    status: str
    version: int
    versions: int
    document: dict
    created_at: dt.datetime
    updated_at: dt.datetime


class SopList(BaseModel):
    sops: list[SopOut]


class SopDryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(14, ge=1, le=90)


class SopDryRunOut(BaseModel):
    code: str
    days: int
    rows: list[dict]


class StepPreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: str
    external_userid: str


class StepPreviewOut(BaseModel):
    step: str
    reach: str
    text: str
    attachments: list[dict]


class StatsQuery(BaseModel):
    code: str
    group_by: Literal["store", "guide"] | None = None


async def _out(session, template: SopTemplate) -> SopOut:
    document = await session.scalar(select(SopVersion.document).where(
        SopVersion.code == template.code, SopVersion.version == template.version))
    count = await session.scalar(select(func.count()).select_from(SopVersion).where(SopVersion.code == template.code))
    return SopOut(code=template.code, name=template.name, status=template.status, version=template.version,
                  versions=count, document=document, created_at=template.created_at, updated_at=template.updated_at)


async def _template(session, code: str, *, lock: bool = False) -> SopTemplate:
    statement = select(SopTemplate).where(SopTemplate.code == code)
    template = await session.scalar(statement.with_for_update() if lock else statement)
    if template is None:
        raise ApiError(404, "not_found", f"no SOP {code!r}")
    return template


async def _save(call: ApiCall, mode: str, code: str | None = None) -> SopOut:
    raw = await read_json_body(call.request)
    async with call.services.db.session() as session, session.begin():
        try:
            config = call.services.config(SopConfig)
            template, _ = await templates.save(session, config, raw, mode=mode, code=code)
        except SopInvalid as exc:
            raise refused(exc) from None
        except FileExistsError:
            raise ApiError(409, "conflict", f"code: SOP {raw.get('code')!r} exists (PUT /api/v1/sops/{{code}} edits it)",
                           [{"field": "code", "problem": "exists"}]) from None
        except LookupError:
            raise ApiError(404, "not_found", f"no SOP {code!r}") from None
        return await _out(session, template)


@api.route("POST", "/api/v1/sops", summary="Create an SOP template (version 1)", roles=WRITERS, response=SopOut,
           status=201)
async def create_sop(call: ApiCall) -> SopOut:
    return await _save(call, "create")


@api.route("PUT", "/api/v1/sops/{code}", summary="Edit an SOP template: a new version for new enrolments",
           roles=WRITERS, response=SopOut)
async def update_sop(call: ApiCall) -> SopOut:
    return await _save(call, "update", call.path["code"])


@api.route("GET", "/api/v1/sops", summary="SOP templates", roles=READERS, response=SopList)
async def list_sops(call: ApiCall) -> SopList:
    async with call.services.db.session() as session:
        rows = (await session.scalars(select(SopTemplate).order_by(SopTemplate.code))).all()
        return SopList(sops=[await _out(session, template) for template in rows])


@api.route("GET", "/api/v1/sops/{code}", summary="An SOP template and its current version", roles=READERS,
           response=SopOut)
async def get_sop(call: ApiCall) -> SopOut:
    async with call.services.db.session() as session:
        return await _out(session, await _template(session, call.path["code"]))


async def _set_status(call: ApiCall, status: str) -> SopOut:
    async with call.services.db.session() as session, session.begin():
        template = await _template(session, call.path["code"], lock=True)
        template.status, template.updated_at = status, utcnow()
        if status == "active":  # what happened while paused is not enrolled afterwards
            template.scanned_until = max(template.scanned_until or template.updated_at, template.updated_at)
        return await _out(session, template)


@api.route("POST", "/api/v1/sops/{code}/pause", summary="Pause: nothing is enrolled or sent until resumed",
           roles=WRITERS, response=SopOut)
async def pause_sop(call: ApiCall) -> SopOut:
    return await _set_status(call, "paused")


@api.route("POST", "/api/v1/sops/{code}/resume", summary="Resume (missed windows are skipped, not sent late)",
           roles=WRITERS, response=SopOut)
async def resume_sop(call: ApiCall) -> SopOut:
    return await _set_status(call, "active")


@api.route("POST", "/api/v1/sops/{code}/dry-run", summary="Customers each step would reach per day and store",
           roles=READERS, body=SopDryRunIn, response=SopDryRunOut)
async def dry_run_sop(call: ApiCall) -> SopDryRunOut:
    body: SopDryRunIn = call.body
    async with call.services.db.session() as session:
        template = await _template(session, call.path["code"])
        document = await Versions(session).get(template.code, template.version)
        rows = await dry_run(session, template, document, now=utcnow(), days=body.days, zone=zone_of(call.services),
                             members=call.services.config(MembersConfig))
    return SopDryRunOut(code=template.code, days=body.days, rows=rows)


@api.route("POST", "/api/v1/sops/{code}/preview", summary="A step rendered for one customer", roles=READERS,
           body=StepPreviewIn, response=StepPreviewOut)
async def preview_step(call: ApiCall) -> StepPreviewOut:
    body: StepPreviewIn = call.body
    async with call.services.db.session() as session:
        template = await _template(session, call.path["code"])
        document: SopDocument = await Versions(session).get(template.code, template.version)
        if body.step not in {step.key for step in document.steps}:
            raise ApiError(422, "invalid_request", f"step: no step {body.step!r}", [{"field": "step", "problem": "unknown"}])
        customer = await session.scalar(select(Customer).where(Customer.external_userid == body.external_userid))
        if customer is None:
            raise ApiError(422, "invalid_request", "external_userid: no such customer",
                           [{"field": "external_userid", "problem": "unknown"}])
        step = step_of(document, body.step)
        content = content_for(step, customer.store_code)
        text = await render_for_customer(session, content["text"], customer.external_userid, utcnow())
        from sop.outreach.fanout import _render_for_senders  # the same sender names the group send uses

        if customer.guide_userid:
            text = (await _render_for_senders(session, text, {customer.guide_userid}))[customer.guide_userid]
    return StepPreviewOut(step=step.key, reach=step.reach, text=text, attachments=content["attachments"])


@api.route("GET", "/api/v1/stats/sop", summary="Per step: due, pushed, confirmed, sent, tasks done, conversions "
           "(and, with a holdout, the holdout's conversions and the uplift)",
           roles=READERS, query=StatsQuery)
async def sop_stats(call: ApiCall) -> dict:
    q: StatsQuery = call.query
    group = {"store": SopRun.store_code, "guide": SopRun.guide_userid, None: None}[q.group_by]
    async with call.services.db.session() as session:
        await _template(session, q.code)
        # A store manager's figures, whatever the grouping, count only the runs of their stores.
        scope = (SopRun.store_code.in_(call.principal.store_codes) if call.principal.role == Role.STORE_MANAGER
                 else true())
        columns = [SopRun.step_key] + ([group] if group is not None else [])

        def count(condition):
            return func.sum(case((condition, 1), else_=0))

        recipient = OutreachRecipient
        rows = await session.execute(
            select(*columns, count(SopRun.status != "waiting"), count(SopItem.status.in_(("pushed", "done")) & (SopItem.reach != "guide_task")),
                   count(OutreachSend.task_status == 2), count(recipient.status == "sent"), count(SopRun.status == "done"),
                   count(SopRun.status == "skipped"), count(SopRun.status == "exited"),
                   count(SopItem.status == "waiting"), count(recipient.status == "held_out"))
            .outerjoin(SopItem, SopItem.id == SopRun.item_id)
            .outerjoin(recipient, and_(recipient.source == SopItem.source, recipient.external_userid == SopRun.external_userid))
            .outerjoin(OutreachSend, and_(OutreachSend.source == recipient.source, OutreachSend.guide_userid == recipient.guide_userid,
                                          OutreachSend.chunk == recipient.chunk))
            .where(SopRun.code == q.code, scope).group_by(*columns).order_by(*columns))
        buyers, held_buyers = await _conversions(session, q.code, group, scope)
        holdout = await _has_holdout(session, q.code)
        out = []
        for row in rows.tuples():
            step, *rest = row
            key = rest.pop(0) if group is not None else None
            due, pushed, confirmed, sent, done, skipped, exited, waiting, held = (int(v or 0) for v in rest)
            entry = {"step": step, "due": due, "pushed": pushed, "confirmed": confirmed, "sent": sent, "tasks_done": done,
                     "waiting_for_guide": waiting, "skipped": skipped, "exited": exited, "held_out": held,
                     "conversions": buyers.get((step, key), 0)}
            if group is not None:
                entry[q.group_by] = key
            if holdout:
                with_uplift(entry, held_buyers.get((step, key), 0))
            out.append(entry)
    return {"code": q.code, "group_by": q.group_by, "attribution_days": ATTRIBUTION_DAYS, "holdout": holdout, "steps": out}


async def _has_holdout(session, code: str) -> bool:
    """Whether any version of the SOP holds customers out (then its stats carry the uplift)."""
    documents = (await session.scalars(select(SopVersion.document).where(SopVersion.code == code))).all()
    return any((document or {}).get("holdout_percent", 0) > 0 for document in documents)


async def _conversions(session, code: str, group, scope) -> tuple[dict, dict]:
    """Customers who paid within ATTRIBUTION_DAYS of WeCom reporting the step sent (or the guide
    marking the task done), per (step, group); and the same for the held-out customers, counted
    from the moment the step would have gone to them — the baseline of the uplift."""
    held = and_(SopRun.status == "skipped", SopRun.reason == "held_out")
    rows = await session.execute(
        select(SopRun.step_key, group if group is not None else SopRun.code, OutreachRecipient.sent_at, SopRun.updated_at,
               SopRun.status, Order.paid_at, SopRun.external_userid)
        .outerjoin(SopItem, SopItem.id == SopRun.item_id)
        .outerjoin(OutreachRecipient, and_(OutreachRecipient.source == SopItem.source,
                                           OutreachRecipient.external_userid == SopRun.external_userid,
                                           OutreachRecipient.status == "sent"))
        .join(Order, and_(Order.external_userid == SopRun.external_userid, Order.status == "paid"))
        .where(SopRun.code == code, scope, or_(SopRun.status.in_(("sent", "done")), held)))
    window = dt.timedelta(days=ATTRIBUTION_DAYS)
    found: dict[tuple, set] = {}
    held_found: dict[tuple, set] = {}
    for step, key, sent_at, updated_at, status, paid_at, customer in rows.tuples():
        start = sent_at if status == "sent" else updated_at
        if start is not None and start <= paid_at <= start + window:
            into = held_found if status == "skipped" else found
            into.setdefault((step, key if group is not None else None), set()).add(customer)
    return ({key: len(customers) for key, customers in found.items()},
            {key: len(customers) for key, customers in held_found.items()})


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def with_uplift(entry: dict, holdout_conversions: int) -> dict:
    """The holdout's conversions and the uplift over them (as the campaigns report it)."""
    rate = _rate(entry["conversions"], entry["sent"] + entry["tasks_done"])
    held_rate = _rate(holdout_conversions, entry["held_out"])
    entry.update(holdout_conversions=holdout_conversions, conversion_rate=rate, holdout_conversion_rate=held_rate,
                 uplift=None if rate is None or held_rate is None else round(rate - held_rate, 4))
    return entry
