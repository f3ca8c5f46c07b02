"""The emulator enforces WeCom's rules; each rule has a test. Time is a frozen, advanceable Clock."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from wechatpy.work import parse_message

from bot.config import EMULATOR_AES_KEY, EMULATOR_CORP_ID, EMULATOR_SECRET, EMULATOR_TOKEN
from bot.emulator import Clock, EmulatorDriver, EmulatorState, create_emulator_app
from bot.wecom.crypto import CallbackCrypto

T0 = 1_700_000_000.0  # 2023-11-14 in China time, mid-month


@pytest.fixture
def state() -> EmulatorState:
    state = EmulatorState(clock=Clock(start=T0))
    state.add_member("guide1", "Ann")
    state.add_member("guide2", "Bo")
    state.add_kf_account("kf1", "Store help")
    return state


@pytest.fixture
async def wecom(aiohttp_client, state):
    """A test client for the emulator holding a token: `await wecom.call(path, body)`."""
    client = await aiohttp_client(create_emulator_app(state))

    async def renew_token() -> None:
        resp = await client.get(
            "/cgi-bin/gettoken", params={"corpid": EMULATOR_CORP_ID, "corpsecret": EMULATOR_SECRET}
        )
        client.token = (await resp.json())["access_token"]

    async def call(path: str, body: dict | None = None, *, token: str | None = "held") -> dict:
        token = client.token if token == "held" else token
        params = {"access_token": token} if token else {}
        resp = await client.post(f"/cgi-bin/{path}", params=params, json=body or {})
        return await resp.json()

    async def code(path: str, body: dict | None = None, **options) -> int:
        return (await call(path, body, **options))["errcode"]

    await renew_token()
    client.call, client.code, client.renew_token = call, code, renew_token
    return client


@pytest.fixture
async def driver(state):
    async with aiohttp.ClientSession() as session:
        crypto = CallbackCrypto(EMULATOR_TOKEN, EMULATOR_AES_KEY, EMULATOR_CORP_ID)
        yield EmulatorDriver(state, None, crypto, session, retry_interval=0)


def errcode(answer: dict) -> int:
    return answer["errcode"]


# Tokens


async def test_gettoken_checks_corp_and_secret(wecom):
    async def gettoken(**params):
        return await (await wecom.get("/cgi-bin/gettoken", params=params)).json()

    assert errcode(await gettoken(corpid=EMULATOR_CORP_ID, corpsecret="wrong")) == 40001
    assert errcode(await gettoken(corpid="wwother", corpsecret=EMULATOR_SECRET)) == 40013
    assert errcode(await gettoken(corpsecret=EMULATOR_SECRET)) == 41002
    assert errcode(await gettoken(corpid=EMULATOR_CORP_ID)) == 41004
    ok = await gettoken(corpid=EMULATOR_CORP_ID, corpsecret=EMULATOR_SECRET)
    assert ok["expires_in"] == 7200 and ok["access_token"]


async def test_missing_unknown_and_expired_tokens(wecom, state):
    assert await wecom.code("externalcontact/get_corp_tag_list", token=None) == 41001
    assert await wecom.code("externalcontact/get_corp_tag_list", token="forged") == 40014
    assert await wecom.code("externalcontact/get_corp_tag_list") == 0
    state.clock.advance(7200)
    assert await wecom.code("externalcontact/get_corp_tag_list") == 42001


async def test_expire_switch_invalidates_tokens_early(wecom):
    await wecom.post("/emulator/tokens/expire")
    assert await wecom.code("externalcontact/get_corp_tag_list") == 42001


# Contact ways


async def test_contact_way_state_is_at_most_30_characters(wecom):
    base = {"type": 1, "scene": 2, "user": ["guide1"]}
    too_long = await wecom.call("externalcontact/add_contact_way", {**base, "state": "s" * 31})
    assert errcode(too_long) == 40058
    assert await wecom.code("externalcontact/add_contact_way", {**base, "state": "s" * 30}) == 0


async def test_contact_way_members_are_checked(wecom):
    two_users = {"type": 1, "scene": 1, "user": ["guide1", "guide2"]}
    assert await wecom.code("externalcontact/add_contact_way", two_users) == 40058
    stranger = {"type": 2, "scene": 1, "user": ["guide1", "nobody"]}
    assert await wecom.code("externalcontact/add_contact_way", stranger) == 40003
    assert await wecom.code("externalcontact/add_contact_way", {"scene": 1, "user": ["guide1"]}) == 41037
    assert await wecom.code("externalcontact/add_contact_way", {"type": 3, "scene": 1}) == 41039


async def test_qr_contact_way_lifecycle(wecom):
    created = await wecom.call(
        "externalcontact/add_contact_way",
        {"type": 2, "scene": 2, "user": ["guide1", "guide2"], "state": "store-7"},
    )
    config_id = created["config_id"]
    assert created["qr_code"].endswith(f"/emulator/contact_way/{config_id}.png")
    png = await wecom.get(f"/emulator/contact_way/{config_id}.png")
    assert png.status == 200 and (await png.read()).startswith(b"\x89PNG")

    update = {"config_id": config_id, "state": "store-8"}
    assert await wecom.code("externalcontact/update_contact_way", update) == 0
    way = (await wecom.call("externalcontact/get_contact_way", {"config_id": config_id}))["contact_way"]
    assert way["state"] == "store-8" and way["user"] == ["guide1", "guide2"]
    assert await wecom.code("externalcontact/del_contact_way", {"config_id": config_id}) == 0
    assert await wecom.code("externalcontact/get_contact_way", {"config_id": config_id}) == 41044


# Welcome messages


async def test_welcome_code_works_once(wecom, driver, state):
    event = await driver.customer_adds_guide("wm1", "guide1", state="store-1", name="Cai")
    body = {"welcome_code": event["welcome_code"], "text": {"content": "Welcome!"}}
    assert await wecom.code("externalcontact/send_welcome_msg", body) == 0
    assert await wecom.code("externalcontact/send_welcome_msg", body) == 41051
    welcomes = [m for m in state.outbox if m["channel"] == "welcome"]
    assert welcomes == [
        {
            "channel": "welcome",
            "time": int(T0),
            "sender": "guide1",
            "to": "wm1",
            "text": {"content": "Welcome!"},
            "attachments": [],
        }
    ]


async def test_no_welcome_code_when_the_console_has_a_welcome_message(driver, state, callback_receiver):
    driver.callback_url = callback_receiver.callback_url
    state.members["guide2"].console_welcome = True
    result = await driver.customer_adds_guide("wm1", "guide2")
    assert result["welcome_code"] is None
    assert "WelcomeCode" not in callback_receiver.received[0]["plaintext"]


async def test_welcome_code_expires_after_20_seconds(wecom, driver, state):
    async def welcome(code: str) -> int:
        return await wecom.code(
            "externalcontact/send_welcome_msg", {"welcome_code": code, "text": {"content": "hi"}}
        )

    fresh = (await driver.customer_adds_guide("wm1", "guide1"))["welcome_code"]
    state.clock.advance(19)
    assert await welcome(fresh) == 0
    stale = (await driver.customer_adds_guide("wm2", "guide1"))["welcome_code"]
    state.clock.advance(21)
    assert await welcome(stale) == 41050
    assert await welcome("made-up") == 41050


async def test_welcome_text_limit_is_4000_bytes_and_a_rejected_send_keeps_the_code(wecom, driver):
    code = (await driver.customer_adds_guide("wm1", "guide1"))["welcome_code"]
    too_long = {"welcome_code": code, "text": {"content": "好" * 1334}}  # 4002 bytes
    assert await wecom.code("externalcontact/send_welcome_msg", too_long) == 45002
    just_fits = {"welcome_code": code, "text": {"content": "好" * 1333 + "a"}}  # 4000 bytes
    assert await wecom.code("externalcontact/send_welcome_msg", just_fits) == 0


async def test_at_most_9_attachments(wecom, driver):
    code = (await driver.customer_adds_guide("wm1", "guide1"))["welcome_code"]
    link = {"msgtype": "link", "link": {"title": "t", "url": "https://example.com"}}
    ten = {"welcome_code": code, "attachments": [link] * 10}
    assert await wecom.code("externalcontact/send_welcome_msg", ten) == 40058
    bad_type = {"welcome_code": code, "attachments": [{"msgtype": "voice"}]}
    assert await wecom.code("externalcontact/send_welcome_msg", bad_type) == 41065
    nine = {"welcome_code": code, "attachments": [link] * 9}
    assert await wecom.code("externalcontact/send_welcome_msg", nine) == 0


# App messages


async def test_app_message_text_limit_is_2048_bytes(wecom, state):
    base = {"touser": "guide1", "msgtype": "text", "agentid": state.agent_id}
    too_long = {**base, "text": {"content": "好" * 683}}  # 2049 bytes
    assert await wecom.code("message/send", too_long) == 45002
    answer = await wecom.call(
        "message/send", {**base, "touser": "guide1|ghost", "text": {"content": "好" * 682 + "ab"}}
    )
    assert errcode(answer) == 0 and answer["invaliduser"] == "ghost"
    assert [m["to"] for m in state.outbox if m["channel"] == "app"] == ["guide1"]
    assert await wecom.code("message/send", {**base, "agentid": 1, "text": {"content": "x"}}) == 40056


# 微信客服


async def kf_send(wecom, text: str = "hello", **extra) -> dict:
    body = {"touser": "wm1", "open_kfid": "kf1", "msgtype": "text", "text": {"content": text}, **extra}
    return await wecom.call("kf/send_msg", body)


async def test_kf_allows_5_messages_per_customer_message(wecom, driver):
    assert errcode(await kf_send(wecom)) == 95002  # the customer never wrote
    await driver.customer_writes_kf("kf1", "wm1", "any coupons?")
    for _ in range(5):
        assert errcode(await kf_send(wecom)) == 0
    assert errcode(await kf_send(wecom)) == 95001
    await driver.customer_writes_kf("kf1", "wm1", "hello again")
    assert errcode(await kf_send(wecom)) == 0


async def test_kf_window_closes_48_hours_after_the_customers_last_message(wecom, driver, state):
    await driver.customer_writes_kf("kf1", "wm1", "hi")
    state.clock.advance(48 * 3600)
    await wecom.renew_token()  # tokens live 2 h
    assert errcode(await kf_send(wecom)) == 0
    state.clock.advance(1)
    assert errcode(await kf_send(wecom)) == 95002


async def test_kf_same_msgid_is_delivered_once(wecom, driver, state):
    await driver.customer_writes_kf("kf1", "wm1", "hi")
    first = await kf_send(wecom, msgid="job-42")
    again = await kf_send(wecom, msgid="job-42")
    assert errcode(first) == errcode(again) == 0 and first["msgid"] == again["msgid"] == "job-42"
    assert len([m for m in state.outbox if m["channel"] == "kf"]) == 1
    assert state.kf_windows[("kf1", "wm1")].sent == 1
    assert errcode(await kf_send(wecom, msgid="not/allowed")) == 40058


async def test_kf_sync_msg_pages_with_cursor_and_checks_the_token(wecom, driver, state):
    event = await driver.customer_writes_kf("kf1", "wm1", "one", menu_id="m1")
    await driver.customer_writes_kf("kf1", "wm1", "two")
    await driver.customer_enters_kf_session("kf1", "wm2")
    token = event["Token"]
    first = await wecom.call("kf/sync_msg", {"open_kfid": "kf1", "token": token, "limit": 2})
    assert first["has_more"] == 1
    assert [m["text"] for m in first["msg_list"]] == [{"content": "one", "menu_id": "m1"}, {"content": "two"}]
    assert first["msg_list"][0]["origin"] == 3 and first["msg_list"][0]["external_userid"] == "wm1"
    rest = await wecom.call("kf/sync_msg", {"open_kfid": "kf1", "cursor": first["next_cursor"]})
    assert rest["has_more"] == 0 and rest["msg_list"][0]["event"]["event_type"] == "enter_session"

    assert await wecom.code("kf/sync_msg", {"open_kfid": "kf1", "token": "forged"}) == 95007
    state.clock.advance(601)
    assert await wecom.code("kf/sync_msg", {"open_kfid": "kf1", "token": token}) == 95007
    assert await wecom.code("kf/sync_msg", {"open_kfid": "nope"}) == 95000


async def test_kf_empty_page_with_has_more_switch(wecom, driver, state):
    await driver.customer_writes_kf("kf1", "wm1", "hi")
    state.kf_empty_pages = 1
    empty = await wecom.call("kf/sync_msg", {"open_kfid": "kf1"})
    assert empty["msg_list"] == [] and empty["has_more"] == 1
    full = await wecom.call("kf/sync_msg", {"open_kfid": "kf1", "cursor": empty["next_cursor"]})
    assert len(full["msg_list"]) == 1 and full["has_more"] == 0


async def test_kf_enter_session_welcome_code_works_once(wecom, driver, state):
    code = (await driver.customer_enters_kf_session("kf1", "wm1"))["welcome_code"]
    body = {"code": code, "msgtype": "text", "text": {"content": "Welcome to the store"}}
    assert await wecom.code("kf/send_msg_on_event", body) == 0
    assert await wecom.code("kf/send_msg_on_event", body) == 41051
    assert [m["to"] for m in state.outbox if m["channel"] == "kf_welcome"] == ["wm1"]


# Group sends


async def group_send(wecom, recipients, sender="guide1") -> dict:
    return await wecom.call(
        "externalcontact/add_msg_template",
        {
            "chat_type": "single",
            "sender": sender,
            "external_userid": recipients,
            "text": {"content": "New season sale"},
        },
    )


async def test_group_send_takes_at_most_10000_customers(wecom):
    too_many = [f"wm{i}" for i in range(10_001)]
    assert errcode(await group_send(wecom, too_many)) == 40058


async def test_group_send_waits_for_the_guide_to_confirm(wecom, state):
    state.add_customer("wm1", follow="guide1")
    state.add_customer("wm2", follow="guide2")
    created = await group_send(wecom, ["wm1", "wm2", "ghost"])
    assert created["fail_list"] == ["wm2", "ghost"]
    msgid = created["msgid"]
    result = await wecom.call(
        "externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": "guide1"}
    )
    assert [(r["external_userid"], r["status"]) for r in result["send_list"]] == [("wm1", 0)]
    assert not [m for m in state.outbox if m["channel"] == "groupmsg"]

    confirmed = await wecom.post(f"/emulator/groupmsg/{msgid}/confirm", json={"sender": "guide1"})
    assert confirmed.status == 200
    result = await wecom.call(
        "externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": "guide1"}
    )
    assert result["send_list"][0]["status"] == 1
    task = await wecom.call("externalcontact/get_groupmsg_task", {"msgid": msgid})
    assert task["task_list"] == [{"userid": "guide1", "status": 2, "send_time": int(T0)}]
    assert [m["to"] for m in state.outbox if m["channel"] == "groupmsg"] == ["wm1"]


async def test_group_send_cap_per_customer_and_friendship(wecom, state):
    state.add_customer("wm1", follow="guide1")
    state.add_customer("wm2", follow="guide1")
    statuses = []
    for _ in range(5):
        msgid = (await group_send(wecom, ["wm1"]))["msgid"]
        await wecom.post(f"/emulator/groupmsg/{msgid}/confirm")
        result = await wecom.call(
            "externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": "guide1"}
        )
        statuses.append(result["send_list"][0]["status"])
    assert statuses == [1, 1, 1, 1, 3]

    msgid = (await group_send(wecom, ["wm2"]))["msgid"]
    del state.customers["wm2"].follows["guide1"]  # the customer deleted the guide before the confirm
    await wecom.post(f"/emulator/groupmsg/{msgid}/confirm")
    result = await wecom.call(
        "externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": "guide1"}
    )
    assert result["send_list"][0]["status"] == 2

    state.clock.advance(31 * 86400)  # next month: the cap starts over
    await wecom.renew_token()
    msgid = (await group_send(wecom, ["wm1"]))["msgid"]
    await wecom.post(f"/emulator/groupmsg/{msgid}/confirm")
    result = await wecom.call(
        "externalcontact/get_groupmsg_send_result", {"msgid": msgid, "userid": "guide1"}
    )
    assert result["send_list"][0]["status"] == 1


async def test_group_send_errors(wecom, state):
    assert errcode(await group_send(wecom, ["ghost"])) == 41048
    assert await wecom.code("externalcontact/get_groupmsg_task", {"msgid": "nope"}) == 41047
    state.add_customer("wm1", follow="guide1")
    msgid = (await group_send(wecom, ["wm1"]))["msgid"]
    for _ in range(3):
        assert await wecom.code("externalcontact/remind_groupmsg_send", {"msgid": msgid}) == 0
    assert await wecom.code("externalcontact/remind_groupmsg_send", {"msgid": msgid}) == 40058
    assert await wecom.code("externalcontact/cancel_groupmsg_send", {"msgid": msgid}) == 0
    assert (await wecom.post(f"/emulator/groupmsg/{msgid}/confirm")).status == 409


# Customers, tags, handovers


async def test_tags_and_customer_profile(wecom, driver):
    await driver.customer_adds_guide("wm1", "guide1", state="store-3", name="Cai", unionid="u1")
    created = await wecom.call(
        "externalcontact/add_corp_tag", {"group_name": "Level", "tag": [{"name": "VIP"}]}
    )
    tag_id = created["tag_group"]["tag"][0]["id"]
    long_name = {"group_name": "Level", "tag": [{"name": "x" * 31}]}
    assert await wecom.code("externalcontact/add_corp_tag", long_name) == 40058
    mark = {"userid": "guide1", "external_userid": "wm1", "add_tag": [tag_id]}
    assert await wecom.code("externalcontact/mark_tag", mark) == 0
    assert await wecom.code("externalcontact/mark_tag", {**mark, "userid": "guide2"}) == 84061
    resp = await wecom.get(
        "/cgi-bin/externalcontact/get", params={"access_token": wecom.token, "external_userid": "wm1"}
    )
    profile = await resp.json()
    assert profile["external_contact"]["name"] == "Cai" and profile["external_contact"]["unionid"] == "u1"
    follow = profile["follow_user"][0]
    assert (follow["userid"], follow["state"]) == ("guide1", "store-3")
    assert follow["tags"] == [{"group_name": "Level", "tag_name": "VIP", "tag_id": tag_id, "type": 1}]
    page = await wecom.call("externalcontact/batch/get_by_user", {"userid_list": ["guide1"], "limit": 10})
    assert page["external_contact_list"][0]["follow_info"]["tag_id"] == [tag_id]


async def test_handover_takes_effect_after_24_hours(wecom, state):
    state.add_customer("wm1", follow="guide1")
    answer = await wecom.call(
        "externalcontact/transfer_customer",
        {"handover_userid": "guide1", "takeover_userid": "guide2", "external_userid": ["wm1", "wm9"]},
    )
    assert answer["customer"] == [
        {"external_userid": "wm1", "errcode": 0},
        {"external_userid": "wm9", "errcode": 40131},
    ]
    assert list(state.customers["wm1"].follows) == ["guide1"]
    state.clock.advance(24 * 3600)
    await wecom.renew_token()  # any call settles the handovers that are due
    assert list(state.customers["wm1"].follows) == ["guide2"]
    resigned = await wecom.call(
        "externalcontact/resigned/transfer_customer",
        {"handover_userid": "guide2", "takeover_userid": "guide1", "external_userid": ["wm1"]},
    )
    assert errcode(resigned) == 40097


# Switches and records


async def test_fault_injection_and_rate_limit(wecom, state):
    await wecom.post("/emulator/faults", json={"errcode": -1, "times": 1})
    assert await wecom.code("externalcontact/get_corp_tag_list") == -1
    assert await wecom.code("externalcontact/get_corp_tag_list") == 0
    await wecom.post("/emulator/config", json={"rate_limit_per_minute": 2})
    assert await wecom.code("externalcontact/get_corp_tag_list") == 0
    assert await wecom.code("externalcontact/get_corp_tag_list") == 0
    assert await wecom.code("externalcontact/get_corp_tag_list") == 45009
    state.clock.advance(60)
    assert await wecom.code("externalcontact/get_corp_tag_list") == 0


async def test_call_record_never_shows_tokens_or_secrets(wecom):
    await wecom.call("externalcontact/add_contact_way", {"type": 1, "scene": 1, "user": ["guide1"]})
    calls = await (await wecom.get("/emulator/calls")).json()
    assert [c["path"] for c in calls] == ["gettoken", "externalcontact/add_contact_way"]
    assert calls[0]["query"] == {"corpid": EMULATOR_CORP_ID}
    assert calls[1]["body"]["user"] == ["guide1"] and calls[1]["errcode"] == 0 and calls[1]["app"] == "app"
    filtered = await (await wecom.get("/emulator/calls", params={"path": "gettoken"})).json()
    assert len(filtered) == 1


# The driver: callbacks as WeCom sends them


@pytest.fixture
async def callback_receiver(aiohttp_server):
    """A stand-in for the service's callback URL that decrypts and keeps what it gets."""
    crypto = CallbackCrypto(EMULATOR_TOKEN, EMULATOR_AES_KEY, EMULATOR_CORP_ID)
    received: list[dict] = []
    statuses: list[int] = []

    async def callback(request: web.Request) -> web.Response:
        raw = await request.text()
        encrypted = raw.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
        q = request.query
        plaintext = crypto.open(q["msg_signature"], q["timestamp"], q["nonce"], encrypted)
        received.append({"outer": raw, "plaintext": plaintext, "message": parse_message(plaintext)})
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/callback", callback)
    server = await aiohttp_server(app)
    server.received, server.statuses = received, statuses
    server.callback_url = str(server.make_url("/callback"))
    return server


async def test_customer_adds_guide_event_is_encrypted_like_wecom(driver, callback_receiver, state):
    driver.callback_url = callback_receiver.callback_url
    result = await driver.customer_adds_guide("wm1", "guide1", state="store-1", name="Cai")
    assert result["http_status"] == 200 and result["attempts"] == 1
    [got] = callback_receiver.received
    event = got["message"]
    assert (event.event, event.change_type) == ("change_external_contact", "add_external_contact")
    assert (event.source, event.user_id, event.external_user_id) == ("sys", "guide1", "wm1")
    assert event.state == "store-1" and event.welcome_code == result["welcome_code"]
    assert "<FromUserName><![CDATA[sys]]></FromUserName>" in got["plaintext"]
    assert state.customers["wm1"].follows["guide1"].state == "store-1"

    await driver.customer_deletes_guide("wm1", "guide1")
    assert callback_receiver.received[-1]["message"].change_type == "del_follow_user"
    assert "guide1" not in state.customers["wm1"].follows


async def test_guide_and_kf_events(driver, callback_receiver):
    driver.callback_url = callback_receiver.callback_url
    await driver.guide_writes_app("guide1", "my tasks")
    await driver.guide_taps_menu("guide1", "TODAY_SOP")
    await driver.customer_writes_kf("kf1", "wm1", "hi")
    text, click, kf = callback_receiver.received
    assert "<AgentID>1000002</AgentID>" in text["outer"]
    assert (text["message"].type, text["message"].content, text["message"].source) == (
        "text",
        "my tasks",
        "guide1",
    )
    assert text["message"].id and text["message"].agent == 1000002
    assert (click["message"].event, click["message"].key) == ("click", "TODAY_SOP")
    assert kf["message"].event == "kf_msg_or_event" and kf["message"].token
    assert "<OpenKfId><![CDATA[kf1]]></OpenKfId>" in kf["plaintext"]


async def test_driver_retries_like_wecom(driver, callback_receiver, state):
    driver.callback_url = callback_receiver.callback_url
    callback_receiver.statuses.extend([500, 503])
    result = await driver.customer_adds_guide("wm1", "guide1")
    assert result["attempts"] == 3 and result["http_status"] == 200
    assert [c["status"] for c in state.callbacks] == [500, 503, 200]


async def test_drive_over_http(aiohttp_client, callback_receiver, state):
    client = await aiohttp_client(create_emulator_app(state, callback_url=callback_receiver.callback_url))
    resp = await client.post(
        "/emulator/drive/customer_adds_guide",
        json={"external_userid": "wm1", "userid": "guide1", "state": "s1"},
    )
    assert resp.status == 200
    assert (await resp.json())["WelcomeCode"] == callback_receiver.received[0]["message"].welcome_code
    bad = await client.post("/emulator/drive/customer_adds_guide", json={"nope": 1})
    assert bad.status == 400
