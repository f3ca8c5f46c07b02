"""Shared fixtures. The backend comes from the environment, as in production:

- no DATABASE_URL / REDIS_URL: a fresh SQLite file per test and the in-process KV store;
- DATABASE_URL=postgresql://… and REDIS_URL=redis://…: the real servers (tables truncated and the
  Redis database flushed before each test). A server that is configured but down fails the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.config import Settings
from bot.features import metadata
from bot.storage import Database
from bot.storage.migrate import upgrade
from bot.wecom.crypto import CallbackCrypto

# WeCom's official sample vectors, kept in the repository so a fresh clone needs nothing beside it.
VECTORS = json.loads((Path(__file__).resolve().parent / "data/wecom-vectors-a.json").read_text())

ENV_REDIS_URL = os.environ.get("REDIS_URL") or None
# Redis for the tests that need Redis itself (shared tokens, the KV contract), whatever the backend.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# PostgreSQL for the tests that need it itself (several workers), whatever the backend. Its database
# is created only when such a test runs: the embedded run needs no server at all.
TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Each run gets its own Redis key prefix and its own PostgreSQL databases, so runs side by side
# (developers, CI) never truncate each other's tables.
RUN_ID = f"{os.getpid()}"
REDIS_PREFIX = f"wa-test-{RUN_ID}:"


class _RunDatabase:
    """A fresh database beside the one named in `url`: created on first use, dropped at the end."""

    def __init__(self, url: str, suffix: str, variable: str):
        settings_url = Settings(_env_file=None, database_url=url).database_url
        base, _, name = settings_url.rpartition("/")
        self.run_name = f"{name}_{suffix}_{RUN_ID}"
        self.url = f"{base}/{self.run_name}"
        self._admin_url = base.replace("+asyncpg", "") + "/" + name
        self._variable = variable
        self.created = False

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._admin_url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create(self) -> str:
        if not self.created:
            try:
                asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.run_name}"'))
                asyncio.run(self._admin(f'CREATE DATABASE "{self.run_name}"'))
            except Exception as exc:  # refused, unknown host, auth: asyncpg and OS errors alike
                pytest.fail(f"PostgreSQL at {self._admin_url} ({self._variable}) cannot be used: "
                            f"{type(exc).__name__}: {exc}", pytrace=False)
            self.created = True
        return self.url

    def drop(self) -> None:
        if self.created:
            asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.run_name}" WITH (FORCE)'))


_env_database = os.environ.get("DATABASE_URL")
_suite_postgres = (_RunDatabase(_env_database, "suite", "DATABASE_URL")
                   if _env_database and "postgres" in _env_database else None)
_test_postgres = _RunDatabase(TEST_POSTGRES_URL, "pg", "TEST_POSTGRES_URL")


def pytest_sessionfinish(session, exitstatus):
    for run_database in (_suite_postgres, _test_postgres):
        if run_database is not None:
            run_database.drop()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL database of this run (TEST_POSTGRES_URL's server), migrated by prepare_postgres."""
    return _test_postgres.create()


async def until(check, within: float = 15.0, interval: float = 0.05):
    """Poll an (async or sync) check until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


SETTLE_HORIZON_SECONDS = 3.0

# Test corp: the official sample's token and key, so the vectors work through the endpoint.
TEST_CORP_ID = "wx5823bf96d3bd56c7"
TEST_TOKEN = "QDG6eK"
TEST_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

_migrated: set[str] = set()


def _normalise(url: str) -> str:
    return Settings(_env_file=None, database_url=url).database_url


async def prepare_postgres(url: str) -> None:
    """Migrate once per run, then empty every table (fast, keeps the schema)."""
    if url not in _migrated:
        await asyncio.to_thread(upgrade, url)
        _migrated.add(url)
    database = Database(url)
    try:
        async with database.engine.begin() as conn:
            tables = ", ".join(t.name for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await database.dispose()


_sqlite_template: dict[str, bytes] = {}


def prepare_sqlite(path: Path) -> str:
    """A migrated SQLite file; migrations run once, later tests copy the result."""
    url = f"sqlite+aiosqlite:///{path}"
    if "db" not in _sqlite_template:
        upgrade(url)
        _sqlite_template["db"] = path.read_bytes()
    else:
        path.write_bytes(_sqlite_template["db"])
    return url


@pytest.fixture
async def database_url(tmp_path) -> str:
    if _suite_postgres is not None:
        url = await asyncio.to_thread(_suite_postgres.create)
        await prepare_postgres(url)
        return url
    if _env_database:
        return _normalise(_env_database)
    return await asyncio.to_thread(prepare_sqlite, tmp_path / "test.db")


@pytest.fixture
async def redis_url() -> str | None:
    if not ENV_REDIS_URL:
        return None
    import redis.asyncio as aioredis

    client = aioredis.from_url(ENV_REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=REDIS_PREFIX + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
    return ENV_REDIS_URL


@pytest.fixture
def make_settings(database_url, redis_url):
    def make(**overrides) -> Settings:
        values = dict(
            database_url=database_url,
            redis_url=redis_url,
            wecom_corp_id=TEST_CORP_ID,
            wecom_agent_id=218,
            wecom_secret="test-secret",
            wecom_token=TEST_TOKEN,
            wecom_encoding_aes_key=TEST_AES_KEY,
            wecom_api_base_url="http://127.0.0.1:9/cgi-bin/",
            wecom_callback_max_skew_seconds=600,
            redis_key_prefix=REDIS_PREFIX,
            job_poll_seconds=0.05,
        )
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def crypto() -> CallbackCrypto:
    return CallbackCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_CORP_ID)


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    yield database
    await database.dispose()


class World:
    """The service (with its in-process job runner) wired to a local WeCom emulator.

    .client: aiohttp TestClient of the service   .services: its Services
    .emulator: EmulatorState (seed it, read .outbox / calls)   .driver: EmulatorDriver
    """

    def __init__(self, client, services, emulator, driver, settings):
        self.client, self.services, self.emulator, self.driver, self.settings = (
            client, services, emulator, driver, settings)

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every job due now, or within a few seconds, has finished (the add pipeline's
        enrich sweep, which also grants the new-member benefit, runs a second or two after a binding)."""
        import time as _time

        from sqlalchemy import select as _select

        from bot.storage.models import Job

        deadline = _time.monotonic() + timeout
        while _time.monotonic() < deadline:
            async with self.services.db.session() as session:
                busy = await session.scalar(
                    _select(Job.id).where(Job.status.in_(("queued", "running")), Job.run_at <= _time.time() + SETTLE_HORIZON_SECONDS)
                    .limit(1))
            if busy is None:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("jobs did not settle in time")


@pytest.fixture
def feature_configs() -> list:
    """Feature settings (MembersConfig, OutreachConfig, …) `world`'s service gets instead of reading
    the environment; an area's conftest overrides this fixture to give its own."""
    return []


@pytest.fixture
async def world(aiohttp_client, make_settings, feature_configs):
    """End to end: service ↔ emulator over real HTTP, callbacks encrypted as WeCom does."""
    import aiohttp

    from bot.app import create_app
    from bot.config import (
        EMULATOR_AES_KEY,
        EMULATOR_AGENT_ID,
        EMULATOR_CORP_ID,
        EMULATOR_SECRET,
        EMULATOR_TOKEN,
    )
    from bot.emulator import EmulatorDriver, EmulatorState, start_emulator
    from bot.services import SERVICES

    state = EmulatorState()
    runner, api_base_url = await start_emulator(state, port=0)
    settings = make_settings(
        wecom_corp_id=EMULATOR_CORP_ID, wecom_agent_id=EMULATOR_AGENT_ID, wecom_secret=EMULATOR_SECRET,
        wecom_token=EMULATOR_TOKEN, wecom_encoding_aes_key=EMULATOR_AES_KEY, wecom_api_base_url=api_base_url,
    )
    client = await aiohttp_client(create_app(settings, run_jobs=True, configs=feature_configs))
    state.callback_url = str(client.make_url("/wecom/callback"))
    session = aiohttp.ClientSession()
    driver = EmulatorDriver(state, state.callback_url, CallbackCrypto(EMULATOR_TOKEN, EMULATOR_AES_KEY,
                                                                      EMULATOR_CORP_ID), session)
    yield World(client, client.app[SERVICES], state, driver, settings)
    await session.close()
    await runner.cleanup()
