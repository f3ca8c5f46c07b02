"""Funnel per code / channel / store / guide. (The guides' leaderboard, the PK board, ranks the
customers' adds and losses: bot/customers/api_board.py, on the same `Period` and roles.)

Store managers see only their stores' rows. Scans happen before a store is known, so for a store
manager (and in the store and guide views) conversion is adds / offers (locate or choice that
showed that store or guide); in the code and channel views it is adds / scans.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.config import corp_zone
from bot.storage import utcnow
from bot.stores.models import FunnelEvent

ROLES = [Role.HQ_ADMIN, Role.STORE_MANAGER]
# Any date is accepted; the report covers only days the service can have data for (and that
# datetime can represent once shifted to UTC: 0001-01-01 and 9999-12-31 cannot).
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2999, 12, 31)
MAX_DAYS = 367  # since…until, both inclusive
GROUP_COLUMNS = {"code": FunnelEvent.qrcode_code, "channel": FunnelEvent.channel_code,
                 "store": FunnelEvent.store_code, "guide": FunnelEvent.guide_userid}


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: dt.date | None = Field(None, description="first day (China time); default: 30 days ago")
    until: dt.date | None = Field(None, description="last day, inclusive; default: today")

    def bounds(self, default_days: int) -> tuple[dt.datetime, dt.datetime]:
        today = utcnow().astimezone(corp_zone()).date()
        # Rules between the two fields, which a schema cannot state: 422 (the query itself is valid).
        if self.since and self.until and self.since > self.until:
            raise ApiError(422, "invalid_request", "since is after until", [{"field": "since", "problem": "after until"}])
        if self.since and self.until and (self.until - self.since).days >= MAX_DAYS:
            raise ApiError(422, "invalid_request", f"at most {MAX_DAYS} days at once",
                           [{"field": "until", "problem": f"more than {MAX_DAYS} days after since"}])
        until = min(max(self.until or today, FIRST_DAY), LAST_DAY)
        since = min(max(self.since or until - dt.timedelta(days=default_days - 1), FIRST_DAY), LAST_DAY)
        start = dt.datetime.combine(since, dt.time(), corp_zone()).astimezone(dt.UTC)
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), corp_zone()).astimezone(dt.UTC)
        return start, end


class FunnelQuery(Period):
    by: Literal["code", "channel", "store", "guide"] = "code"


class FunnelRow(BaseModel):
    key: str | None
    scans: int
    located: int
    chosen: int
    adds: int
    deletes: int
    net_friends: int
    conversion: float | None = Field(description="adds / scans (code, channel) or adds / offers (store, guide)")


class FunnelReport(BaseModel):
    by: str
    since: dt.datetime
    until: dt.datetime
    rows: list[FunnelRow]


@api.route("GET", "/api/v1/stats/funnel", summary="Scans → located → adds → net friends, grouped",
           roles=ROLES, query=FunnelQuery, response=FunnelReport)
async def funnel(call: ApiCall) -> FunnelReport:
    q: FunnelQuery = call.query
    start, end = q.bounds(30)
    column = GROUP_COLUMNS[q.by]
    statement = (select(column, FunnelEvent.step, func.count())
                 .where(FunnelEvent.at >= start, FunnelEvent.at < end).group_by(column, FunnelEvent.step))
    manager = call.principal.role == Role.STORE_MANAGER
    if manager:
        statement = statement.where(FunnelEvent.store_code.in_(call.principal.store_codes))
    async with call.services.db.session() as session:
        counts: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for key, step, count in (await session.execute(statement)).all():
            counts[key][step] += count
    rows = []
    for key, steps in counts.items():
        adds, offers = steps["add"], steps["locate"] + steps["choose"]
        base = offers if manager or q.by in ("store", "guide") else steps["scan"]
        rows.append(FunnelRow(
            key=key, scans=steps["scan"], located=steps["locate"], chosen=steps["choose"], adds=adds,
            deletes=steps["delete"], net_friends=adds - steps["delete"],
            conversion=round(adds / base, 4) if base else None,
        ))
    rows.sort(key=lambda r: (-r.adds, -r.scans, r.key or ""))
    return FunnelReport(by=q.by, since=start, until=end, rows=rows)
