"""Admin API foundation: tokens from the CLI, roles, the error shape, OpenAPI, events and jobs."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from bot.app import create_app
from bot.cli import main as cli
from bot.jobs import JobRunner
from bot.services import SERVICES
from bot.stores.models import Guide
from tests.callback.conftest import contact_event, post


async def run_cli(*args: str):
    """The CLI runs its own event loop, so call it from a thread as a shell would."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def cli_token(monkeypatch, database_url: str, *args: str) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = await run_cli("token", "create", *args)
    assert result.exit_code == 0, result.output
    return result.output.split()[-1]


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, run_jobs=False))


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_events_newest_first_for_hq(client, crypto, monkeypatch, database_url):
    token = await cli_token(monkeypatch, database_url, "--role", "hq_admin")
    for name in ("wmFirst", "wmSecond"):
        await post(client, crypto.seal(contact_event(name)))
    response = await client.get("/api/v1/events?limit=10", headers=bearer(token))
    assert response.status == 200
    events = (await response.json())["events"]
    assert [e["external_user_id"] for e in events] == ["wmSecond", "wmFirst"]
    assert events[0]["status"] == "pending" and events[0]["attempts"] == 0
    assert events[0]["kind"] == "event:change_external_contact:add_external_contact"

    await JobRunner(client.app[SERVICES], poll_seconds=0.02).run(burst=True)
    events = (await (await client.get("/api/v1/events?limit=1", headers=bearer(token))).json())["events"]
    assert len(events) == 1 and events[0]["status"] in ("handled", "ignored")


async def test_auth_errors_share_one_shape(client, monkeypatch, database_url):
    response = await client.get("/api/v1/events")
    assert response.status == 401
    assert set((await response.json())["error"]) == {"code", "message", "details"}
    assert (await client.get("/api/v1/events", headers=bearer("wa_forged"))).status == 401
    hq = bearer(await cli_token(monkeypatch, database_url, "--role", "hq_admin"))  # a guide token needs its guide
    assert (await client.post("/api/v1/stores", json={"code": "S1", "name": "店"}, headers=hq)).status == 201
    async with client.app[SERVICES].db.session() as session, session.begin():  # (the API would ask WeCom)
        session.add(Guide(userid="guide01", name="导购", store_code="S1"))
    guide = await cli_token(monkeypatch, database_url, "--role", "guide", "--guide", "guide01")
    response = await client.get("/api/v1/events", headers=bearer(guide))
    assert response.status == 403 and (await response.json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "status=lost", "colour=red"])
async def test_malformed_admin_request_is_a_400_with_details(client, monkeypatch, database_url, query):
    token = await cli_token(monkeypatch, database_url, "--role", "hq_admin")
    response = await client.get(f"/api/v1/events?{query}", headers=bearer(token))
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == "invalid_request" and body["error"]["details"]


def test_token_roles_need_their_scope(monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(cli, ["token", "create", "--role", "store_manager"])
    assert result.exit_code != 0 and "--store" in result.output


async def test_openapi_lists_the_endpoints(client):
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert "get" in document["paths"]["/api/v1/events"]
    assert "EventPage" in document["components"]["schemas"]


async def test_dead_jobs_listed_and_retried_through_api_and_cli(client, monkeypatch, database_url):
    services = client.app[SERVICES]
    token = await cli_token(monkeypatch, database_url, "--role", "hq_admin")
    from bot.jobs import enqueue

    async with services.db.session() as session, session.begin():
        await enqueue(session, "no.such.kind", {"x": 1})
    await JobRunner(services, poll_seconds=0.02).run(burst=True)
    dead = (await (await client.get("/api/v1/jobs?status=dead", headers=bearer(token))).json())["jobs"]
    assert len(dead) == 1 and "unknown job kind" in dead[0]["last_error"]

    result = await run_cli("jobs", "list", "--status", "dead")
    assert result.exit_code == 0 and '"kind":"no.such.kind"' in result.output

    response = await client.post(f"/api/v1/jobs/{dead[0]['id']}/retry", headers=bearer(token))
    assert response.status == 200 and (await response.json())["status"] == "queued"
    response = await client.post(f"/api/v1/jobs/{dead[0]['id']}/retry", headers=bearer(token))
    assert response.status == 409
    assert (await client.post("/api/v1/jobs/abc/retry", headers=bearer(token))).status == 400
