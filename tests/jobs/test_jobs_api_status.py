"""GET /api/v1/jobs filters by every status a job can have, `expired` included."""

from __future__ import annotations

import time

from bot.api.auth import Role, create_token
from bot.config import Settings
from bot.storage.models import Job


async def test_expired_jobs_are_listed_by_status(world):
    token = await create_token(world.services.db, Role.HQ_ADMIN)
    async with world.services.db.session() as session, session.begin():
        for status in ("expired", "done", "dead"):
            session.add(Job(kind="customers.welcome", payload={"n": status}, status=status, run_at=time.time()))
    answer = await world.client.get("/api/v1/jobs?status=expired", headers={"Authorization": f"Bearer {token}"})
    assert answer.status == 200, await answer.text()
    jobs = (await answer.json())["jobs"]
    assert [(job["status"], job["payload"]) for job in jobs] == [("expired", {"n": "expired"})]
    refused = await world.client.get("/api/v1/jobs?status=lost", headers={"Authorization": f"Bearer {token}"})
    assert refused.status == 400 and "status" in await refused.text()


def test_the_wecom_call_budget_defaults_to_wecoms_own_limit():
    assert Settings(_env_file=None).wecom_api_calls_per_minute == 10_000  # per API per minute (45009 above)
