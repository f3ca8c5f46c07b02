"""Health, readiness with a backend down, metrics, configuration errors."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.config import ConfigError, load_settings
from bot.features import wiring
from bot.services import SERVICES
from bot.storage.models import InboxEvent, Job
from tests.callback.conftest import contact_event, post

NOTHING_LISTENS = "127.0.0.1:1"


async def test_healthz_and_readyz(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    assert (await client.get("/healthz")).status == 200
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["checks"] == {"database": "ok", "kv": "ok"}


async def test_redis_down_readyz_says_so_and_callbacks_are_still_kept(aiohttp_client, make_settings, crypto):
    settings = make_settings(redis_url=f"redis://{NOTHING_LISTENS}/0")
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"] == {"database": "ok", "kv": "down"}
    # Intake needs only the database: the event is accepted and kept, not lost.
    assert (await post(client, crypto.seal(contact_event("wmRedisDown")))).status == 200
    async with client.app[SERVICES].db.session() as session:
        assert await session.scalar(select(func.count()).select_from(InboxEvent)) == 1


async def test_database_down_callbacks_are_spooled_and_readyz_stays_in_rotation(aiohttp_client, make_settings,
                                                                                  crypto, tmp_path):
    settings = make_settings(database_url=f"postgresql://postgres@{NOTHING_LISTENS}/test",
                             callback_spool_path=str(tmp_path / "spool.sqlite3"))
    client = await aiohttp_client(create_app(settings, run_jobs=False, migrate=False))
    response = await client.get("/readyz")
    assert response.status == 200 and (await response.json())["checks"]["database"] == "down"
    response = await post(client, crypto.seal(contact_event("wmDbDown")))
    assert response.status == 200  # kept in the local spool until the database is back
    body = await (await client.get("/readyz")).json()
    assert body["status"] == "degraded" and body["spool"] == {"pending": 1, "writable": True}


async def test_database_and_spool_down_answers_503_so_wecom_retries(aiohttp_client, make_settings, crypto,
                                                                     tmp_path):
    (tmp_path / "file").write_text("")
    settings = make_settings(database_url=f"postgresql://postgres@{NOTHING_LISTENS}/test",
                             callback_spool_path=str(tmp_path / "file" / "spool.sqlite3"))  # under a file
    client = await aiohttp_client(create_app(settings, run_jobs=False, migrate=False))
    response = await client.get("/readyz")
    assert response.status == 503 and (await response.json())["checks"]["database"] == "down"
    response = await post(client, crypto.seal(contact_event("wmDbDown")))
    assert response.status == 503
    assert "Traceback" not in await response.text()


async def test_metrics_count_callbacks_by_type_and_outcome(aiohttp_client, settings, crypto):
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    sealed = crypto.seal(contact_event("wmMetrics"))
    await post(client, sealed)
    await post(client, sealed)
    await post(client, sealed, msg_signature="0" * 40)
    text = await (await client.get("/metrics")).text()
    kind = "event:change_external_contact:add_external_contact"
    assert f'wecom_callbacks_total{{outcome="accepted",type="{kind}"}}' in text
    assert f'wecom_callbacks_total{{outcome="duplicate",type="{kind}"}}' in text
    assert 'outcome="bad_signature"' in text
    async with client.app[SERVICES].db.session() as session:  # dispatch, welcome, and the recurring jobs
        queued = await session.scalar(select(func.count()).select_from(Job).where(Job.status == "queued"))
    assert queued == 2 + len(wiring().cron) and f'jobs_queue_depth{{status="queued"}} {queued}.0' in text


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"WECOM_ENCODING_AES_KEY": "short"}, "WECOM_ENCODING_AES_KEY"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"WECOM_CALLBACK_MAX_SKEW_SECONDS": "-5"}, "WECOM_CALLBACK_MAX_SKEW_SECONDS"),
        ({"WECOM_CORP_ID": "ww1"}, "WECOM_SECRET"),
        ({"PORT": "http"}, "PORT"),
    ],
)
def test_bad_configuration_names_the_variable(monkeypatch, env, variable):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings(_env_file=None)


def test_postgres_url_gets_the_async_driver(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db:5432/app")
    assert load_settings(_env_file=None).database_url == "postgresql+asyncpg://postgres@db:5432/app"


async def test_log_lines_carry_the_request_id(aiohttp_client, settings, crypto, caplog):
    import logging

    caplog.set_level(logging.WARNING)
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    response = await post(client, crypto.seal(contact_event("wmLog")), msg_signature="0" * 40)
    assert response.status == 403
    request_id = response.headers["X-Request-Id"]
    rejected = [r for r in caplog.records if r.name == "bot.callback"]
    assert rejected and rejected[0].request_id == request_id
    assert settings.wecom_secret not in caplog.text and settings.wecom_encoding_aes_key not in caplog.text
