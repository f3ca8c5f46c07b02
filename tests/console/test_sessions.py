"""Sign-in, the session cookie, CSRF, sign-out and expiry; bearer tokens keep working beside them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from bot.api.auth import Role, create_token
from bot.console.models import ConsoleSession
from bot.services import SERVICES
from bot.stores.models import Store
from tests.console.conftest import PASSWORD, browser_session

NEW_STORE = {"code": "GZ001", "name": "广州天河店", "city": "广州"}


async def count_stores(console) -> int:
    async with console.app[SERVICES].db.session() as session:
        return await session.scalar(select(func.count()).select_from(Store))


async def test_sign_in_sets_an_httponly_samesite_cookie_and_answers_the_csrf_token(console):
    answer = await console.post("/api/v1/session", json={"username": "hq", "password": PASSWORD})
    assert answer.status == 200
    body = await answer.json()
    assert body["username"] == "hq" and body["role"] == "hq_admin" and len(body["csrf_token"]) >= 32
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("wa_console=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in tests; https PUBLIC_BASE_URL turns it on
    async with console.app[SERVICES].db.session() as session:
        stored = (await session.scalars(select(ConsoleSession))).one()
    assert stored.token_hash not in cookie  # only the hash is kept


async def test_the_session_cookie_reads_the_api_as_the_users_role(sign_in):
    hq = await sign_in("hq")
    answer = await hq.client.get("/api/v1/stores")
    assert answer.status == 200
    assert [s["code"] for s in (await answer.json())["stores"]] == ["BJ001", "SH001"]
    me = await (await hq.client.get("/api/v1/session")).json()
    assert me["signed_in"] and me["csrf_token"] == hq.csrf and me["store_codes"] == []


async def test_wrong_password_and_unknown_user_answer_the_same_401_and_set_no_cookie(console):
    for username, password in (("hq", "wrong password"), ("nobody", PASSWORD)):
        answer = await console.post("/api/v1/session", json={"username": username, "password": password})
        assert answer.status == 401
        body = await answer.json()
        assert body["error"]["code"] == "invalid_credentials"
        assert body["error"]["details"] == [{"field": "password", "problem": "wrong username or password"}]
        assert "Set-Cookie" not in answer.headers


async def test_sign_in_fields_are_validated_by_name(console):
    answer = await console.post("/api/v1/session", json={"username": "", "password": PASSWORD, "extra": 1})
    assert answer.status == 400
    fields = {d["field"] for d in (await answer.json())["error"]["details"]}
    assert fields == {"username", "extra"}


async def test_sign_in_refuses_a_form_post_so_other_sites_cannot_sign_people_in(console):
    answer = await console.post("/api/v1/session", data={"username": "hq", "password": PASSWORD})
    assert answer.status == 415
    assert "Set-Cookie" not in answer.headers


async def test_a_write_without_the_csrf_token_is_refused_and_changes_nothing(sign_in, console):
    hq = await sign_in("hq")
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        answer = await hq.client.post("/api/v1/stores", json=NEW_STORE, headers=headers)
        assert answer.status == 403
        assert (await answer.json())["error"]["code"] == "csrf_failed"
    assert await count_stores(console) == 2
    answer = await hq.client.post("/api/v1/stores", json=NEW_STORE, headers=hq.headers())
    assert answer.status == 201
    assert await count_stores(console) == 3


async def test_one_sessions_csrf_token_does_not_work_with_another_session(sign_in):
    first, second = await sign_in("hq"), await sign_in("hq")
    answer = await second.client.post("/api/v1/stores", json=NEW_STORE, headers=first.headers())
    assert answer.status == 403


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(sign_in, console):
    hq = await sign_in("hq")
    cookie = {c.key: c.value for c in hq.client.cookie_jar}
    assert (await hq.client.delete("/api/v1/session")).status == 403
    assert (await hq.client.get("/api/v1/stores")).status == 200
    answer = await hq.client.delete("/api/v1/session", headers=hq.headers())
    assert answer.status == 204
    assert (await hq.client.get("/api/v1/stores")).status == 401  # the browser dropped the cookie
    # The old cookie value, replayed, is dead on the server too.
    async with browser_session(console) as stolen:
        replay = await stolen.get("/api/v1/stores", cookies=cookie)
        assert replay.status == 401
        assert (await replay.json())["error"]["code"] == "session_expired"


async def test_an_expired_session_answers_401_session_expired(sign_in, console):
    hq = await sign_in("hq")
    async with console.app[SERVICES].db.session() as session, session.begin():
        await session.execute(update(ConsoleSession).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    answer = await hq.client.get("/api/v1/stores")
    assert answer.status == 401
    assert (await answer.json())["error"]["code"] == "session_expired"
    assert await (await hq.client.get("/api/v1/session")).json() == {"signed_in": False}


async def test_use_pushes_the_idle_expiry_forward(sign_in, console):
    hq = await sign_in("hq")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    async with console.app[SERVICES].db.session() as session, session.begin():
        await session.execute(update(ConsoleSession).values(expires_at=soon))
    assert (await hq.client.get("/api/v1/stores")).status == 200
    async with console.app[SERVICES].db.session() as session:
        renewed = await session.scalar(select(ConsoleSession.expires_at))
    assert renewed > soon + dt.timedelta(hours=7)


async def test_bearer_tokens_still_work_and_ignore_cookies(console):
    token = await create_token(console.app[SERVICES].db, Role.HQ_ADMIN)
    answer = await console.post("/api/v1/stores", json=NEW_STORE, headers={"Authorization": f"Bearer {token}"})
    assert answer.status == 201  # no CSRF for integrations: they send no cookie
    assert (await console.get("/api/v1/stores")).status == 401  # neither cookie nor token


async def test_a_console_user_is_a_principal_with_their_name_and_a_negative_id(sign_in, console):
    from bot.console.models import ConsoleUser
    from bot.console.sessions import principal_for

    async with console.app[SERVICES].db.session() as session:
        user = (await session.scalars(select(ConsoleUser).where(ConsoleUser.username == "sh"))).one()
    principal = principal_for(user)
    assert (principal.token_id, principal.role, principal.store_codes, principal.username) == (
        -user.id, Role.STORE_MANAGER, ("SH001",), "sh")


async def test_the_cookie_is_secure_when_the_service_is_public_over_https(aiohttp_client, make_settings):
    from bot.app import create_app
    from bot.console.accounts import create_user

    client = await aiohttp_client(create_app(make_settings(public_base_url="https://guide.example.com"), run_jobs=False))
    await create_user(client.app[SERVICES].db, "hq", PASSWORD, "hq_admin")
    answer = await client.post("/api/v1/session", json={"username": "hq", "password": PASSWORD})
    assert answer.status == 200
    assert "Secure" in answer.headers["Set-Cookie"]
