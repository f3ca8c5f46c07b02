"""The console's world: the service (no job runner needed) with people's accounts and two stores,
and a signed-in helper that keeps the cookie and the CSRF token like the browser does."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp import ClientSession, CookieJar

from bot.console.accounts import create_user
from bot.customers.models import Customer
from bot.storage import utcnow
from bot.stores.models import Store

PASSWORD = "correct horse battery"
STORES = [("SH001", "上海人民广场店", "上海"), ("BJ001", "北京王府井店", "北京")]
CUSTOMERS = [("wmShanghai", "沪客户", "SH001"), ("wmBeijing", "京客户", "BJ001")]


@dataclass
class Person:
    client: ClientSession  # its own cookie jar
    csrf: str

    def headers(self, **extra) -> dict:
        return {"X-CSRF-Token": self.csrf, **extra}


async def seed_shops(db) -> None:
    async with db.session() as session, session.begin():
        for code, name, city in STORES:
            session.add(Store(code=code, name=name, city=city, address="", status="open"))
        for external_userid, name, store in CUSTOMERS:
            session.add(Customer(external_userid=external_userid, name=name, store_code=store,
                                 guide_userid=None, status="bound", tags=[], bound_at=utcnow()))


CORP_MEMBERS = ["wang", "x1"]  # WeCom userids the console tests create guides for


@pytest.fixture
async def console(aiohttp_client, make_settings):
    """A running service with an HQ admin `hq` and a store manager `sh` of SH001, beside a WeCom
    emulator whose corp has the members the tests make guides of (the API checks them with WeCom)."""
    from bot.app import create_app
    from bot.config import EMULATOR_AGENT_ID, EMULATOR_CORP_ID, EMULATOR_SECRET
    from bot.emulator import EmulatorState, start_emulator
    from bot.services import SERVICES

    state = EmulatorState()
    for userid in CORP_MEMBERS:
        state.add_member(userid)
    emulator, api_base_url = await start_emulator(state, port=0)
    app = create_app(make_settings(wecom_corp_id=EMULATOR_CORP_ID, wecom_agent_id=EMULATOR_AGENT_ID,
                                   wecom_secret=EMULATOR_SECRET, wecom_api_base_url=api_base_url), run_jobs=False)

    async def stop_emulator(_app) -> None:
        await emulator.cleanup()

    app.on_cleanup.append(stop_emulator)
    client = await aiohttp_client(app)
    db = client.app[SERVICES].db
    await seed_shops(db)
    await create_user(db, "hq", PASSWORD, "hq_admin")
    await create_user(db, "sh", PASSWORD, "store_manager", ["SH001"])
    return client


def browser_session(console) -> ClientSession:
    """An HTTP client with its own cookie jar, like a separate browser (unsafe: the host is an IP)."""
    return ClientSession(base_url=str(console.make_url("/")), cookie_jar=CookieJar(unsafe=True))


@pytest.fixture
async def sign_in(console):
    """Sign in as someone in a fresh cookie jar."""
    opened: list[ClientSession] = []

    async def run(username: str, password: str = PASSWORD) -> Person:
        client = browser_session(console)
        opened.append(client)
        answer = await client.post("/api/v1/session", json={"username": username, "password": password})
        assert answer.status == 200, await answer.text()
        return Person(client, (await answer.json())["csrf_token"])

    yield run
    for client in opened:
        await client.close()


async def seed_activity(db, days: int = 10) -> None:
    """Two guides and ten days of scans, locates and adds, so the dashboard has something to draw."""
    import datetime as dt

    from bot.customers.models import CustomerBinding
    from bot.stores.models import FunnelEvent, Guide

    now = utcnow()
    async with db.session() as session, session.begin():
        session.add_all([Guide(userid="ann", name="安娜", store_code="SH001", status="active"),
                         Guide(userid="dan", name="丹丹", store_code="BJ001", status="active")])
        for day in range(days):
            at = now - dt.timedelta(days=day, minutes=5)
            for store, guide, base in (("SH001", "ann", 9), ("BJ001", "dan", 5)):
                scans = base + (day * 7) % 5
                for step, count in (("scan", scans), ("locate", scans - 2), ("add", scans // 2), ("delete", day % 2)):
                    session.add_all(FunnelEvent(step=step, qrcode_code="poster01", channel_code="poster",
                                                store_code=store, guide_userid=guide, at=at) for _ in range(count))
                session.add_all(CustomerBinding(external_userid=f"wm{store}{day}{i}", guide_userid=guide,
                                                store_code=store, source="scan", started_at=at)
                                for i in range(scans // 2))
