"""The outreach a customer received, newest first, for the console's customer page: campaign group
sends (one outreach recipient row per customer and campaign) and SOP steps (one run per customer
and step: a group send or a guide task), merged.

Scoped like the customer page: a customer outside the caller's scope answers 404, exactly as an
unknown one. It sits with the console because it reads both the campaigns' and the SOP engine's
tables, which no lower feature may.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, or_, select

from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.customers.scope import ROLES, visible_customer
from sop.campaigns.models import Campaign
from sop.engine.models import SopItem, SopRun, SopTemplate
from sop.outreach.models import OutreachPlan, OutreachRecipient

CAMPAIGN = "campaign:"
# A page cursor: kind, planned time in epoch microseconds, row id (see OutreachRow.cursor).
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CURSOR = r"^(campaign|sop)-[0-9]{1,19}-[0-9]{1,19}$"


class CustomerOutreachQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    before: str | None = Field(None, pattern=CURSOR, description="page: entries after this `cursor` (newest first)")
    limit: int = Field(50, ge=1, le=200)


class OutreachRow(BaseModel):
    source: Literal["campaign", "sop"]
    ref: str = Field(description="the campaign id or the SOP code")
    name: str
    step_key: str | None = Field(description="the SOP step; null for a campaign")
    guide_userid: str | None
    planned_at: dt.datetime
    status: str = Field(description="campaign: the recipient's status (held_out, pending, sent, not_friend, …); "
                                    "SOP: the send's status once pushed, else the step's (waiting, queued, done, …)")
    reason: str | None
    sent_at: dt.datetime | None
    cursor: str = Field(description="pass as `before` for the entries after this one")


class OutreachHistory(BaseModel):
    items: list[OutreachRow]
    next_before: str | None = Field(description="`before` for the next page; null on the last page")


def _micros(when: dt.datetime) -> int:
    return (when - EPOCH) // dt.timedelta(microseconds=1)


def _parse_cursor(cursor: str) -> tuple[str, dt.datetime, int]:
    kind, micros, row_id = cursor.split("-")
    try:
        when = EPOCH + dt.timedelta(microseconds=int(micros))
    except OverflowError:
        raise ApiError(422, "invalid_request", "before: not a cursor of this list",
                       [{"field": "before", "problem": "time out of range"}]) from None
    return kind, when, int(row_id)


def _after(cursor, kind: str, planned, row_id):
    """Rows after the cursor in the order (planned_at, kind, id), descending."""
    if cursor is None:
        return None
    c_kind, c_when, c_id = cursor
    if kind == c_kind:
        return or_(planned < c_when, and_(planned == c_when, row_id < c_id))
    return planned <= c_when if kind < c_kind else planned < c_when


async def _campaign_rows(session, external_userid: str, cursor, limit: int) -> list[OutreachRow]:
    r = OutreachRecipient
    statement = (select(r.id, r.source, r.guide_userid, r.status, r.reason, r.sent_at, OutreachPlan.planned_at)
                 .join(OutreachPlan, OutreachPlan.source == r.source)
                 .where(r.external_userid == external_userid, r.source.like(CAMPAIGN + "%")))
    if (after := _after(cursor, "campaign", OutreachPlan.planned_at, r.id)) is not None:
        statement = statement.where(after)
    found = (await session.execute(statement.order_by(OutreachPlan.planned_at.desc(), r.id.desc()).limit(limit))).all()
    ids = {int(source.removeprefix(CAMPAIGN)) for _, source, *_ in found if source.removeprefix(CAMPAIGN).isdigit()}
    names = dict((await session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids)))).all()) if ids else {}
    rows = []
    for row_id, source, guide, status, reason, sent_at, planned_at in found:
        ref = source.removeprefix(CAMPAIGN)
        rows.append(OutreachRow(source="campaign", ref=ref, name=names.get(int(ref), source) if ref.isdigit() else source,
                                step_key=None, guide_userid=guide, planned_at=planned_at, status=status, reason=reason,
                                sent_at=sent_at, cursor=f"campaign-{_micros(planned_at)}-{row_id}"))
    return rows


async def _sop_rows(session, external_userid: str, cursor, limit: int) -> list[OutreachRow]:
    run, sent = SopRun, OutreachRecipient
    statement = (select(run.id, run.code, run.step_key, run.guide_userid, run.status, run.reason, run.due_at,
                        SopTemplate.name, SopItem.acted_at, sent.status, sent.reason, sent.sent_at)
                 .outerjoin(SopTemplate, SopTemplate.code == run.code)
                 .outerjoin(SopItem, SopItem.id == run.item_id)
                 .outerjoin(sent, and_(sent.source == SopItem.source, sent.external_userid == run.external_userid))
                 .where(run.external_userid == external_userid))
    if (after := _after(cursor, "sop", run.due_at, run.id)) is not None:
        statement = statement.where(after)
    found = (await session.execute(statement.order_by(run.due_at.desc(), run.id.desc()).limit(limit))).all()
    return [OutreachRow(
        source="sop", ref=code, name=name or code, step_key=step_key, guide_userid=guide, planned_at=due_at,
        status=send_status or status, reason=send_reason if send_status else reason,
        sent_at=sent_at or (acted_at if status == "done" else None), cursor=f"sop-{_micros(due_at)}-{row_id}",
    ) for (row_id, code, step_key, guide, status, reason, due_at, name, acted_at, send_status, send_reason, sent_at)
        in found]


@api.route("GET", "/api/v1/customers/{external_userid}/outreach",
           summary="The campaign sends and SOP steps a customer was part of, newest first",
           roles=ROLES, query=CustomerOutreachQuery, response=OutreachHistory)
async def customer_outreach(call: ApiCall) -> OutreachHistory:
    q: CustomerOutreachQuery = call.query
    external_userid = call.path["external_userid"]
    cursor = _parse_cursor(q.before) if q.before else None
    async with call.services.db.session() as session:
        await visible_customer(session, call.principal, external_userid)
        # Each source's first `limit` rows after the cursor hold the merged page's rows.
        rows = (await _campaign_rows(session, external_userid, cursor, q.limit + 1)
                + await _sop_rows(session, external_userid, cursor, q.limit + 1))
    rows.sort(key=lambda row: (row.planned_at, row.source, int(row.cursor.rsplit("-", 1)[1])), reverse=True)
    page = rows[: q.limit]
    return OutreachHistory(items=page, next_before=page[-1].cursor if len(rows) > q.limit else None)
