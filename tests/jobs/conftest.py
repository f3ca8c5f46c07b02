"""Fixtures for the job runner's tests: a runner on the test database, job rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot.jobs import JobRunner
from bot.kv import MemoryStore
from bot.storage.models import Job


def make_runner(db, kv=None, **options) -> JobRunner:
    services = SimpleNamespace(db=db, kv=kv or MemoryStore(),
                               settings=SimpleNamespace(job_max_attempts=6, timezone="Asia/Shanghai"))
    options.setdefault("poll_seconds", 0.02)
    options.setdefault("backoff_base", 0.01)
    return JobRunner(services, **options)


@pytest.fixture
def runner_for():
    return make_runner


@pytest.fixture
def rows():
    async def read(db) -> list[Job]:
        async with db.session() as session:
            return list(await session.scalars(select(Job).order_by(Job.id)))

    return read
