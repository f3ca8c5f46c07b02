"""A pass is one transaction: when it fails after planning, nothing it planned is published (no
item, no outreach, no send job) and the next pass sends exactly once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.storage.models import Job
from sop.engine import tick
from sop.outreach.models import OutreachPlan
from tests.sop.conftest import local, onboarding


async def test_a_pass_that_fails_after_planning_publishes_nothing(sw, monkeypatch):
    await sw.api("POST", "/api/v1/sops", 201, json=onboarding())
    await sw.bind("wmA1", "ann")
    await sw.tick(dt.datetime.now(dt.UTC))

    async def broken(session, now, report):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(tick, "expire_unpushed", broken)  # runs after the sends were planned
    with pytest.raises(RuntimeError):
        await tick.run_tick(sw.services, local(1, "10:00"))
    await sw.settle()
    assert sw.group_sends() == [] and await sw.items() == []
    assert (await sw.runs())[("wmA1", "d1")] == ("waiting", None)
    async with sw.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(OutreachPlan)) == 0
        assert await session.scalar(select(func.count()).select_from(Job).where(Job.kind == "outreach.send")) == 0

    monkeypatch.undo()
    await sw.tick(local(1, "10:01"))
    assert [sorted(send.tasks["ann"].results) for send in sw.group_sends()] == [["wmA1"]]
    assert (await sw.runs())[("wmA1", "d1")] == ("sent", None)
