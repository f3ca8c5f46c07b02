"""Saving templates: a new code starts at version 1; a changed document becomes the next version
(new enrolments get it, enrolled customers keep theirs). Validation happens before any write."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.storage import utcnow
from sop.engine.config import SopConfig
from sop.engine.document import SopDocument, SopInvalid, validate
from sop.engine.models import SopTemplate, SopVersion
from sop.engine.tick import schedule_tick


def stored(document: SopDocument) -> dict:
    return document.model_dump(mode="json", by_alias=True, exclude_none=True)


async def save(session, config: SopConfig, raw: dict, *, mode: str, code: str | None = None) -> tuple[SopTemplate, bool]:
    """mode: create (409 if it exists), update (404 if not), apply (either). Returns (template,
    whether a new version was written). Raises SopInvalid or LookupError/FileExistsError."""
    if not isinstance(raw, dict):
        raise SopInvalid("document", "a JSON object is required")
    if code is not None:
        if raw.get("code", code) != code:
            raise SopInvalid("code", f"must be {code!r} (the template's code cannot change)")
        raw = {**raw, "code": code}
    document = await validate(session, raw)
    template = await session.scalar(select(SopTemplate).where(SopTemplate.code == document.code).with_for_update())
    if template is None and mode == "update":
        raise LookupError(document.code)
    if template is not None and mode == "create":
        raise FileExistsError(document.code)
    now = utcnow()
    if template is None:
        template = SopTemplate(code=document.code, name=document.name, status="active", version=1, created_at=now,
                               updated_at=now)
        session.add(template)
        session.add(SopVersion(code=document.code, version=1, document=stored(document), created_at=now))
        await session.flush()
        await schedule_tick(session, config)
        return template, True
    current = await session.scalar(select(SopVersion.document).where(
        SopVersion.code == template.code, SopVersion.version == template.version))
    if current == stored(document):
        return template, False
    latest = await session.scalar(select(func.max(SopVersion.version)).where(SopVersion.code == template.code))
    template.version, template.name, template.updated_at = latest + 1, document.name, now
    session.add(SopVersion(code=template.code, version=template.version, document=stored(document), created_at=now))
    await session.flush()
    await schedule_tick(session, config)
    return template, True
