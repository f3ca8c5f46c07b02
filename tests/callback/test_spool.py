"""A database outage loses nothing: callbacks go to the local spool (200) and reach the inbox,
once each, with their dispatch and intake jobs, when the database is back."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bot.app import create_app
from bot.callback import inbox
from bot.callback.spool import SPOOL, CallbackSpool
from bot.jobs import JobRunner
from bot.services import SERVICES
from bot.storage.models import InboxEvent, Job
from tests.callback.conftest import contact_event
from tests.conftest import TEST_AES_KEY, TEST_CORP_ID, TEST_TOKEN

REPO = Path(__file__).resolve().parents[2]
NOTHING_LISTENS = "postgresql://postgres@127.0.0.1:1/test"


def edit_event(external_userid: str) -> str:
    """An event no handler takes (a customer agreed to chat archiving): dispatching it records it as
    ignored, with no WeCom call. (edit_external_contact is taken now: the tag mirror re-reads tags.)"""
    return contact_event(external_userid).replace("add_external_contact", "msg_audit_approved")


class _FailingEngine:
    """Stands in for the engine while the database is away: every connection attempt fails."""

    def begin(self):
        raise OperationalError("BEGIN", {}, ConnectionRefusedError("database is down"))

    connect = begin


async def post(client, sealed: dict) -> int:
    response = await client.post("/wecom/callback", params=sealed["params"], data=sealed["body"])
    return response.status


async def inbox_state(services) -> tuple[list[str], int, int]:
    """(external user ids in the inbox, dispatch jobs, welcome jobs)."""
    async with services.db.session() as session:
        users = sorted(await session.scalars(select(InboxEvent.external_user_id)))
        dispatch = await session.scalar(select(func.count()).select_from(Job).where(Job.kind == inbox.DISPATCH_JOB))
        welcome = await session.scalar(select(func.count()).select_from(Job).where(Job.kind == "customers.welcome"))
    return users, dispatch, welcome


async def wait_until_drained(client, expected_users: list[str], timeout: float = 30.0) -> None:
    services, deadline = client.app[SERVICES], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await client.app[SPOOL].pending() == 0 and (await inbox_state(services))[0] == expected_users:
                return
        except Exception:  # the database may still be on its way back
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"not drained: {await client.app[SPOOL].pending()} still spooled")


async def test_engine_failing_callbacks_are_spooled_then_kept_once(intake, crypto):
    services = intake.app[SERVICES]
    before = [crypto.seal(contact_event(f"wmBefore{i:02d}")) for i in range(5)]
    assert [await post(intake, s) for s in before] == [200] * 5

    real_engine, services.db.engine = services.db.engine, _FailingEngine()
    try:
        plaintexts = [contact_event(f"wmDuring{i:02d}") for i in range(40)]
        statuses = await asyncio.gather(*(post(intake, crypto.seal(p)) for p in plaintexts))
        # WeCom's retries: the same event in a fresh ciphertext; kept once in the spool.
        statuses += [await post(intake, crypto.seal(p)) for p in plaintexts[::4]]
        assert statuses == [200] * 50
        ready = await intake.get("/readyz")
        body = await ready.json()
        assert ready.status == 200 and body["status"] == "degraded" and body["spool"]["pending"] == 40
        assert (await inbox_state(services))[0] == [f"wmBefore{i:02d}" for i in range(5)]
    finally:
        services.db.engine = real_engine

    expected = sorted([f"wmBefore{i:02d}" for i in range(5)] + [f"wmDuring{i:02d}" for i in range(40)])
    await wait_until_drained(intake, expected)
    assert await inbox_state(services) == (expected, 45, 45)  # dispatch and welcome jobs, once each
    body = await (await intake.get("/readyz")).json()
    assert body["status"] == "ready" and body["spool"] == {"pending": 0}
    assert 'wecom_callback_spool_drained_total 40.0' in await (await intake.get("/metrics")).text()


async def test_a_slow_inbox_write_is_spooled_and_still_kept_once(aiohttp_client, make_settings, crypto,
                                                                  tmp_path, monkeypatch):
    """The write outlives the timeout but does commit: the spooled copy is a duplicate at drain."""
    settings = make_settings(callback_inbox_timeout_seconds=0.2, callback_spool_path=str(tmp_path / "s.sqlite3"))
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    real_write = inbox.InboxWriter._write

    async def slow_write(self, batch):
        await asyncio.sleep(1.5)
        return await real_write(self, batch)

    monkeypatch.setattr(inbox.InboxWriter, "_write", slow_write)
    started = time.monotonic()
    assert await post(client, crypto.seal(contact_event("wmSlow"))) == 200
    assert time.monotonic() - started < 1.2  # answered from the spool, not after the slow write
    monkeypatch.undo()
    await wait_until_drained(client, ["wmSlow"])
    await asyncio.sleep(1.6)  # both the slow write and the drain's have committed by now
    assert await inbox_state(client.app[SERVICES]) == (["wmSlow"], 1, 1)


async def test_a_killed_process_spool_is_drained_by_the_next_start(aiohttp_client, make_settings, crypto,
                                                                    tmp_path, unused_tcp_port):
    """A real process, database unreachable, takes callbacks and is SIGKILLed; the next process
    with the same spool path moves them into the database."""
    spool_path = tmp_path / "spool.sqlite3"
    env = {**os.environ, "DATABASE_URL": NOTHING_LISTENS, "CALLBACK_SPOOL_PATH": str(spool_path),
           "WECOM_CORP_ID": TEST_CORP_ID, "WECOM_AGENT_ID": "218", "WECOM_SECRET": "s",
           "WECOM_TOKEN": TEST_TOKEN, "WECOM_ENCODING_AES_KEY": TEST_AES_KEY, "REDIS_URL": "",
           "LOG_LEVEL": "ERROR"}
    code = ("import sys; from aiohttp import web; from bot.app import create_app; from bot.config import load_settings;"
            "web.run_app(create_app(load_settings(_env_file=None), run_jobs=False, migrate=False),"
            " host='127.0.0.1', port=int(sys.argv[1]), print=None, access_log=None)")
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, str(unused_tcp_port), cwd=REPO,
                                                   env=env)
    try:
        import aiohttp

        url = f"http://127.0.0.1:{unused_tcp_port}/wecom/callback"
        async with aiohttp.ClientSession() as session:
            # Starting a process (imports, app) takes seconds on a busy CI machine: wait up to a minute.
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{unused_tcp_port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    assert time.monotonic() < deadline, "the service process did not start within 60 s"
                    await asyncio.sleep(0.1)
            for i in range(20):
                sealed = crypto.seal(contact_event(f"wmKilled{i:02d}"))
                async with session.post(url, params=sealed["params"], data=sealed["body"]) as response:
                    assert response.status == 200
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert await CallbackSpool(spool_path).pending() == 20

    client = await aiohttp_client(create_app(make_settings(callback_spool_path=str(spool_path)), run_jobs=False))
    expected = [f"wmKilled{i:02d}" for i in range(20)]
    await wait_until_drained(client, expected)
    assert await inbox_state(client.app[SERVICES]) == (expected, 20, 20)


async def test_postgres_outage_through_a_cut_proxy_loses_nothing(aiohttp_client, make_settings, crypto,
                                                                 db_proxy_to_postgres, tmp_path):
    proxy, proxied_url = db_proxy_to_postgres
    settings = make_settings(database_url=proxied_url, callback_inbox_timeout_seconds=0.5,
                             callback_spool_path=str(tmp_path / "spool.sqlite3"))
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    services = client.app[SERVICES]
    assert [await post(client, crypto.seal(edit_event(f"wmUp{i:02d}"))) for i in range(10)] == [200] * 10

    proxy.cut_off()
    statuses, cut_at = [], time.monotonic()
    for second in range(3):  # callbacks keep coming through the outage, with WeCom's retries
        plaintexts = [edit_event(f"wmCut{second}{i:02d}") for i in range(20)]
        sealed = [crypto.seal(p) for p in plaintexts] + [crypto.seal(p) for p in plaintexts[:5]]
        statuses += await asyncio.gather(*(post(client, s) for s in sealed))
        await asyncio.sleep(max(0.0, cut_at + second + 1 - time.monotonic()))
    assert statuses == [200] * 75
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["checks"]["database"] == "down" and body["spool"]["pending"] == 60
    proxy.restore()

    expected = sorted([f"wmUp{i:02d}" for i in range(10)] + [f"wmCut{s}{i:02d}" for s in range(3) for i in range(20)])
    await wait_until_drained(client, expected)
    users, dispatch, _ = await inbox_state(services)
    assert users == expected and dispatch == 70  # each event once, each with its dispatch job

    await JobRunner(services, poll_seconds=0.02).run(burst=True)
    async with services.db.session() as session:
        statuses = set(await session.scalars(select(InboxEvent.status)))
        undone = await session.scalar(select(func.count()).select_from(Job).where(
            Job.kind == inbox.DISPATCH_JOB, Job.status != "done"))
    assert statuses == {"ignored"} and undone == 0  # every one dispatched (no handler takes edits)


def test_each_process_identity_has_its_own_spool_file(make_settings, tmp_path):
    from bot.callback.spool import default_spool_path

    sqlite = make_settings(database_url=f"sqlite:///{tmp_path}/data/wa.db", port=8081)
    assert default_spool_path(sqlite) == tmp_path / "data" / "wa-callback-spool-8081.sqlite3"  # beside the data
    postgres = [make_settings(database_url=url, port=port) for url, port in
                [("postgresql://h/a", 8080), ("postgresql://h/a", 8081), ("postgresql://h/b", 8080)]]
    paths = {default_spool_path(settings) for settings in postgres}
    assert len(paths) == 3 and default_spool_path(postgres[0]) == default_spool_path(postgres[0].model_copy())
    explicit = make_settings(callback_spool_path=str(tmp_path / "mine.sqlite3"))
    assert default_spool_path(explicit) == tmp_path / "mine.sqlite3"
