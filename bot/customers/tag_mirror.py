"""Customer tags as WeCom has them: a mirror of the corp tags guides put on their customers.

WeCom is the truth: `edit_external_contact` (a guide changed a customer's tags) re-reads that
customer; `change_external_tag` (a corp tag renamed or deleted) re-reads the tag names; a full
resync walks every guide's customers. Rows are (customer, guide, tag) so audiences filter with an
index (`customer_tags`), never by scanning JSON.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, select, update

from bot.customers.tag_mirror_models import CustomerTag
from bot.jobs import JobContext, tasks
from bot.storage import utcnow
from bot.stores.models import Guide
from bot.wecom.client import WeComAPIError

log = logging.getLogger("bot.customers.tag_mirror")

MIRROR_CUSTOMER_JOB = "customer_tags.mirror_customer"
REFRESH_NAMES_JOB = "customer_tags.refresh_names"
RESYNC_JOB = "customer_tags.resync"
INVALID_EXTERNAL_USERID = 40096
USERS_PER_CALL = 100  # batch/get_by_user: userid_list ≤ 100, limit ≤ 100


def _rows(external_userid: str, guide_userid: str, tags: list[tuple[str, str]], now: dt.datetime) -> list[dict]:
    unique = dict(tags)  # tag_id -> name
    return [dict(external_userid=external_userid, guide_userid=guide_userid, tag_id=tag_id, tag_name=name,
                 synced_at=now) for tag_id, name in unique.items()]


async def replace_customer_tags(session, external_userid: str, follows: dict[str, list[tuple[str, str]]]) -> None:
    """Make the mirror of one customer equal `follows` (guide → [(tag_id, name)])."""
    now = utcnow()
    await session.execute(delete(CustomerTag).where(CustomerTag.external_userid == external_userid))
    rows = [row for guide, tags in follows.items() for row in _rows(external_userid, guide, tags, now)]
    if rows:
        await session.execute(CustomerTag.__table__.insert(), rows)


@tasks(MIRROR_CUSTOMER_JOB, quick=True)
async def mirror_customer_job(job: JobContext, payload: dict) -> None:
    """Re-read one customer's tags from WeCom (after edit_external_contact)."""
    external_userid = payload["external_userid"]
    try:
        answer = await job.services.wecom.externalcontact.get(external_userid)
    except WeComAPIError as exc:
        if exc.errcode != INVALID_EXTERNAL_USERID:
            raise
        answer = {"follow_user": []}  # gone from WeCom: no tags left
    follows = {
        follow["userid"]: [(tag["tag_id"], tag["tag_name"]) for tag in follow.get("tags", []) if tag.get("type", 1) == 1]
        for follow in answer.get("follow_user", [])
    }
    async with job.services.db.session() as session, session.begin():
        await replace_customer_tags(session, external_userid, follows)


async def corp_tag_names(wecom) -> dict[str, str]:
    answer = await wecom.externalcontact.get_corp_tag_list()
    return {tag["id"]: tag["name"] for group in answer.get("tag_group", []) for tag in group.get("tag", [])}


@tasks(REFRESH_NAMES_JOB)
async def refresh_names_job(job: JobContext, payload: dict) -> None:
    """A corp tag was renamed or deleted (change_external_tag): follow the names, drop the deleted."""
    names = await corp_tag_names(job.services.wecom)
    async with job.services.db.session() as session, session.begin():
        known = set((await session.scalars(select(CustomerTag.tag_id).distinct())).all())
        gone = known - set(names)
        if gone:
            await session.execute(delete(CustomerTag).where(CustomerTag.tag_id.in_(gone)))
        for tag_id in known & set(names):
            await session.execute(update(CustomerTag).where(CustomerTag.tag_id == tag_id,
                                                            CustomerTag.tag_name != names[tag_id])
                                  .values(tag_name=names[tag_id]))


@tasks(RESYNC_JOB)
async def resync_job(job: JobContext, payload: dict) -> None:
    """Full resync: every guide's customers with their tags (batch/get_by_user, cursor paging)."""
    wecom, db = job.services.wecom, job.services.db
    names = await corp_tag_names(wecom)
    async with db.session() as session:
        guides = list((await session.scalars(select(Guide.userid).order_by(Guide.userid))).all())
    for start in range(0, len(guides), USERS_PER_CALL):
        batch = guides[start:start + USERS_PER_CALL]
        follows: dict[str, dict[str, list[tuple[str, str]]]] = {}
        cursor = ""
        while True:
            answer = await wecom.externalcontact.batch_get_by_user(batch, cursor=cursor or None, limit=100)
            for item in answer.get("external_contact_list", []):
                info = item["follow_info"]
                tags = [(tag_id, names[tag_id]) for tag_id in info.get("tag_id", []) if tag_id in names]
                follows.setdefault(item["external_contact"]["external_userid"], {})[info["userid"]] = tags
            cursor = answer.get("next_cursor") or ""
            if not cursor:
                break
        # No transaction is open while WeCom answers: write this batch of guides once read.
        async with db.session() as session, session.begin():
            await session.execute(delete(CustomerTag).where(CustomerTag.guide_userid.in_(batch)))
            now = utcnow()
            rows = [row for external_userid, by_guide in follows.items() for guide, tags in by_guide.items()
                    for row in _rows(external_userid, guide, tags, now)]
            if rows:
                await session.execute(CustomerTag.__table__.insert(), rows)
    log.info("customer tags resynced for %d guides", len(guides))
