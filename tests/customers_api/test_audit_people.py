"""The audit log names the console user behind a write (user id and username), and still the token
behind an integration's write."""

from __future__ import annotations

from aiohttp import ClientSession, CookieJar

from bot.console.accounts import create_user


async def test_a_console_users_write_is_audited_under_their_name(crm):
    user = await create_user(crm.services.db, "li.ming", "correct horse battery", "hq_admin")
    async with ClientSession(base_url=str(crm.client.make_url("/")), cookie_jar=CookieJar(unsafe=True)) as browser:
        answer = await browser.post("/api/v1/session", json={"username": "li.ming", "password": "correct horse battery"})
        csrf = (await answer.json())["csrf_token"]
        answer = await browser.post("/api/v1/channels", json={"code": "CHX", "name": "海报X"},
                                    headers={"X-CSRF-Token": csrf})
        assert answer.status == 201, await answer.text()
    answer = await crm.client.post("/api/v1/channels", json={"code": "CHY", "name": "海报Y"},
                                   headers={"Authorization": f"Bearer {crm.tokens['hq']}"})
    assert answer.status == 201
    entries = (await crm.get("/api/v1/audit"))["entries"]
    by_target = {e["target"]: (e["token_id"], e["user_id"], e["username"], e["role"]) for e in entries}
    assert by_target["code=CHX"] == (None, user.id, "li.ming", "hq_admin")
    token_id, user_id, username, _ = by_target["code=CHY"]
    assert token_id is not None and token_id > 0 and (user_id, username) == (None, None)
    mine = (await crm.get("/api/v1/audit", user_id=str(user.id)))["entries"]
    assert [e["target"] for e in mine] == ["code=CHX"]
