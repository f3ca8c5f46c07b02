"""One bad event is refused alone: its neighbours in the same group commit are still kept."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.callback import inbox
from bot.services import SERVICES
from bot.storage.batching import GroupCommit
from bot.storage.models import InboxEvent, Job
from tests.callback.conftest import contact_event

BAD_CREATE_TIMES = ["²", "①", str(2**63), "9" * 25, "-1", ""]


async def kept(client) -> tuple[list[str], int]:
    """(external user ids in the inbox, dispatch jobs)."""
    async with client.app[SERVICES].db.session() as session:
        users = list(await session.scalars(select(InboxEvent.external_user_id)))
        jobs = await session.scalar(select(func.count()).select_from(Job).where(Job.kind == inbox.DISPATCH_JOB))
    return users, jobs


async def post(client, sealed: dict):
    response = await client.post("/wecom/callback", params=sealed["params"], data=sealed["body"])
    return response.status, await response.text()


async def test_bad_events_among_500_good_ones_are_refused_alone(intake, crypto):
    good = [crypto.seal(contact_event(f"wmGood{i:03d}")) for i in range(500)]
    bad = [crypto.seal(contact_event(f"wmBad{i}", create_time=value)) for i, value in enumerate(BAD_CREATE_TIMES)]
    # Every bad event lands in the middle of a burst of good ones.
    order = [*good[:250], *bad, *good[250:]]
    answers = await asyncio.gather(*(post(intake, sealed) for sealed in order))
    by_body = {sealed["body"]: answer for sealed, answer in zip(order, answers, strict=True)}
    assert [by_body[s["body"]][0] for s in good] == [200] * 500
    for sealed in bad:
        status, text = by_body[sealed["body"]]
        assert status == 400 and "CreateTime" in text
    users, jobs = await kept(intake)
    assert sorted(users) == [f"wmGood{i:03d}" for i in range(500)] and jobs == 500


async def test_an_over_long_msg_id_is_kept_once_under_its_hash(intake, crypto):
    long_id = "9" * 200  # past the 80-character dedup column
    plaintext = contact_event("wmLongId", msg_id=long_id)
    neighbours = [crypto.seal(contact_event(f"wmNeighbour{i}")) for i in range(50)]
    deliveries = [crypto.seal(plaintext) for _ in range(3)]  # WeCom's retries, fresh ciphertexts
    answers = await asyncio.gather(*(post(intake, sealed) for sealed in [*neighbours, *deliveries]))
    assert [status for status, _ in answers] == [200] * 53
    async with intake.app[SERVICES].db.session() as session:
        keys = list(await session.scalars(select(InboxEvent.dedup_key).where(
            InboxEvent.external_user_id == "wmLongId")))
    assert len(keys) == 1 and keys[0].startswith("msgh:") and len(keys[0]) <= 80
    users, jobs = await kept(intake)
    assert len(users) == 51 and jobs == 51


async def test_a_row_the_database_refuses_fails_only_its_own_callback(intake, crypto, monkeypatch):
    """A row that passes every check yet breaks the batch (here: an intake job without a kind,
    NOT NULL on both backends) is written alone; the others of its batch are kept."""

    def broken_hook(event):
        return {"kind": None, "dedupe_key": "broken"} if event.external_user_id == "wmBroken" else None

    writer = intake.app[SERVICES].inbox
    monkeypatch.setattr(writer, "intake", [*writer.intake, broken_hook])
    good = [crypto.seal(contact_event(f"wmFine{i:03d}")) for i in range(200)]
    broken = crypto.seal(contact_event("wmBroken"))
    answers = await asyncio.gather(*(post(intake, s) for s in [*good[:100], broken, *good[100:]]))
    statuses = [status for status, _ in answers]
    assert statuses[100] == 503 and statuses[:100] + statuses[101:] == [200] * 200
    users, jobs = await kept(intake)
    assert sorted(users) == [f"wmFine{i:03d}" for i in range(200)] and jobs == 200


async def test_group_commit_fails_every_caller_when_the_store_is_down():
    """Not a bad row: no one-by-one retry (it would wait on a dead database once per caller)."""
    calls: list[int] = []

    async def write(items):
        calls.append(len(items))
        raise ConnectionRefusedError("down")

    batches = GroupCommit(write, retry_alone=lambda exc: not isinstance(exc, OSError))
    results = await asyncio.gather(*(batches.submit(i) for i in range(10)), return_exceptions=True)
    assert all(isinstance(result, ConnectionRefusedError) for result in results) and calls == [10]


@pytest.mark.parametrize("fail_on", [{3}, {0, 9}, set(range(10))])
async def test_group_commit_writes_one_by_one_after_a_bad_item(fail_on):
    async def write(items):
        if fail_on & set(items):
            raise ValueError(f"bad {sorted(fail_on & set(items))}")
        return [item * 10 for item in items]

    batches = GroupCommit(write, retry_alone=lambda exc: isinstance(exc, ValueError))
    results = await asyncio.gather(*(batches.submit(i) for i in range(10)), return_exceptions=True)
    for i, result in enumerate(results):
        assert isinstance(result, ValueError) if i in fail_on else result == i * 10
