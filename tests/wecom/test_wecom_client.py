"""WeComClient against the emulator: shared token, refresh, retries, limits, typed errors, logs."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.config import EMULATOR_AGENT_ID, EMULATOR_SECRET
from bot.emulator import EmulatorState
from bot.kv import MemoryStore, RedisStore
from bot.metrics import REGISTRY
from bot.wecom.client import RateLimited, WeComAPIError, WeComClient, WeComUnavailable
from bot.wecom.client.ratelimit import RateLimiter
from tests.wecom.conftest import make_client

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TAGS = "externalcontact/get_corp_tag_list"


def errcodes(state: EmulatorState, path: str) -> list[int]:
    return [call["errcode"] for call in state.calls_to(path)]


# The token: fetched once, shared, refreshed when WeCom says so


async def test_50_concurrent_calls_fetch_one_token(session, emulator, state):
    api = make_client(session, emulator)
    calls = [api.externalcontact.get_corp_tag_list() for _ in range(25)]
    calls += [api.message.send_text("guide1", f"task {i}") for i in range(25)]
    answers = await asyncio.gather(*calls)
    assert all(answer["errcode"] == 0 for answer in answers)
    assert len(state.calls_to("gettoken")) == 1
    # No separate contact/kf secrets configured: every group falls back to the app secret.
    assert {call["app"] for call in state.calls if call["path"] != "gettoken"} == {"app"}


async def test_each_group_uses_its_own_secret(session, emulator, state):
    state.secrets = {"app": "s-app", "contact": "s-contact", "kf": "s-kf"}
    api = make_client(session, emulator, secrets=dict(state.secrets))
    await api.externalcontact.get_corp_tag_list()
    await api.message.send_text("guide1", "hello")
    await api.kf.sync_msg(open_kfid="kf1")
    assert [(c["path"], c["app"]) for c in state.calls if c["path"] != "gettoken"] == [
        (TAGS, "contact"),
        ("message/send", "app"),
        ("kf/sync_msg", "kf"),
    ]
    assert len(state.calls_to("gettoken")) == 3


async def test_token_expired_early_is_refreshed_and_the_call_retried(session, emulator, state):
    api = make_client(session, emulator)
    await api.externalcontact.get_corp_tag_list()
    state.expire_tokens()
    answers = await asyncio.gather(*[api.externalcontact.get_corp_tag_list() for _ in range(20)])
    assert all(answer["errcode"] == 0 for answer in answers)
    assert len(state.calls_to("gettoken")) == 2  # one refresh for all 20 callers
    assert errcodes(state, TAGS).count(0) == 21


async def test_revoked_token_40014_is_replaced(session, emulator, state):
    kv = MemoryStore()
    api = make_client(session, emulator, kv)
    await api.externalcontact.get_corp_tag_list()
    state.tokens.clear()  # WeCom revoked it: the process's copy and the KV entry are both stale
    assert (await api.externalcontact.get_corp_tag_list())["errcode"] == 0
    assert errcodes(state, TAGS) == [0, 40014, 0]
    assert len(state.calls_to("gettoken")) == 2
    assert await kv.get(api.tokens.key(EMULATOR_SECRET)) in state.tokens  # the new one, shared


async def test_token_refresh_is_retried_only_once(session, emulator, state):
    api = make_client(session, emulator)
    state.fail_next(42001, times=5, path=TAGS)
    with pytest.raises(WeComAPIError) as raised:
        await api.externalcontact.get_corp_tag_list()
    assert raised.value.errcode == 42001
    assert errcodes(state, TAGS) == [42001, 42001]
    assert len(state.calls_to("gettoken")) == 2


async def test_two_processes_share_one_token_through_redis(state, emulator):
    prefix = f"test-wecom-{uuid.uuid4().hex}:"
    stores = [RedisStore(TEST_REDIS_URL, prefix=prefix) for _ in range(2)]
    assert await stores[0].ping(), f"Redis at {TEST_REDIS_URL} is not reachable"
    try:
        async with aiohttp.ClientSession() as one, aiohttp.ClientSession() as two:
            apis = [make_client(one, emulator, stores[0]), make_client(two, emulator, stores[1])]
            await asyncio.gather(
                *[api.externalcontact.get_corp_tag_list() for api in apis for _ in range(25)]
            )
            assert len(state.calls_to("gettoken")) == 1
            state.expire_tokens()
            await asyncio.gather(
                *[api.externalcontact.get_corp_tag_list() for api in apis for _ in range(10)]
            )
            assert len(state.calls_to("gettoken")) == 2
    finally:
        raw = aioredis.from_url(TEST_REDIS_URL)
        keys = [key async for key in raw.scan_iter(match=prefix + "*")]
        if keys:
            await raw.delete(*keys)
        await raw.aclose()
        for store in stores:
            await store.close()


# Errors and retries


async def test_system_busy_is_retried_with_backoff(session, emulator, state):
    api = make_client(session, emulator, max_retries=3)
    state.fail_next(-1, times=2, path=TAGS)
    assert (await api.externalcontact.get_corp_tag_list())["errcode"] == 0
    assert errcodes(state, TAGS) == [-1, -1, 0]

    state.fail_next(-1, times=10, path=TAGS)
    with pytest.raises(WeComUnavailable):
        await api.externalcontact.get_corp_tag_list()
    assert errcodes(state, TAGS)[3:] == [-1, -1, -1, -1]  # 1 try + 3 retries


@pytest.mark.parametrize(("errcode", "retry_after"), [(45009, 60.0), (45033, 5.0)])
async def test_frequency_limits_raise_rate_limited(session, emulator, state, errcode, retry_after):
    api = make_client(session, emulator)
    state.fail_next(errcode, path=TAGS)
    with pytest.raises(RateLimited) as raised:
        await api.externalcontact.get_corp_tag_list()
    assert (raised.value.errcode, raised.value.retry_after) == (errcode, retry_after)
    assert isinstance(raised.value, WeComAPIError)
    assert errcodes(state, TAGS) == [errcode]  # not retried: the job runner defers it


async def test_emulator_rate_limit_reaches_the_caller(session, emulator, state):
    api = make_client(session, emulator)
    state.rate_limit_per_minute = 3  # per path, as at WeCom
    await api.externalcontact.get_corp_tag_list()
    await api.externalcontact.get_corp_tag_list()
    await api.externalcontact.get_corp_tag_list()
    with pytest.raises(RateLimited):
        await api.externalcontact.get_corp_tag_list()


async def test_other_errcodes_raise_wecom_api_error(session, emulator):
    api = make_client(session, emulator)
    with pytest.raises(WeComAPIError) as raised:
        await api.externalcontact.add_contact_way(type=1, scene=2, user=["guide1"], state="s" * 31)
    assert raised.value.errcode == 40058 and not isinstance(raised.value, RateLimited)
    assert "30 characters" in raised.value.errmsg


async def test_unreachable_wecom_raises_unavailable(session):
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    api = WeComClient(
        session,
        MemoryStore(),
        base_url="http://127.0.0.1:9/cgi-bin/",
        corp_id="ww1",
        secrets={"app": "s"},
        agent_id=1,
        max_retries=2,
        sleep=fake_sleep,
    )
    with pytest.raises(WeComUnavailable) as raised:
        await api.message.send_text("guide1", "hi")
    assert len(slept) == 2  # connection refused means nothing was sent, so even sends are retried
    assert raised.value.maybe_delivered is False


async def test_timeouts_retry_reads_but_not_sends(session, emulator, state):
    api = make_client(session, emulator, timeout=0.1)
    await api.access_token()
    state.fail_next(0, path=TAGS, delay=0.3)  # errcode 0 + delay: only slow
    assert (await api.externalcontact.get_corp_tag_list())["errcode"] == 0

    state.fail_next(0, path="message/send", delay=0.3)
    with pytest.raises(WeComUnavailable) as raised:
        await api.message.send_text("guide1", "hi")
    assert raised.value.maybe_delivered is True
    await _wait_for(lambda: state.calls_to("message/send"))
    assert len([m for m in state.outbox if m["channel"] == "app"]) == 1  # not sent a second time


async def test_kf_send_retry_after_timeout_delivers_once(session, emulator, state):
    state.queue_kf_message(
        "kf1", {"external_userid": "wm1", "origin": 3, "msgtype": "text", "text": {"content": "hi"}}
    )
    api = make_client(session, emulator, timeout=0.1)
    await api.access_token("kf")
    state.fail_next(0, path="kf/send_msg", delay=0.3)
    answer = await api.kf.send_msg(touser="wm1", open_kfid="kf1", text={"content": "Hello!"})
    await _wait_for(lambda: len(state.calls_to("kf/send_msg")) == 2)
    assert [m["msgid"] for m in state.outbox if m["channel"] == "kf"] == [answer["msgid"]]


async def _wait_for(condition) -> None:
    """Poll for up to 2 s: the emulator finishes a late answer after the client gave up on it."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 2 s")


# The local rate limiter


async def test_rate_limiter_waits_for_a_near_window_and_refuses_a_far_one():
    now = [120.0]
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(MemoryStore(), "ww1", 2, max_wait=2.0, clock=lambda: now[0], sleep=fake_sleep)
    await limiter.acquire("message/send")
    await limiter.acquire("message/send")
    with pytest.raises(RateLimited) as raised:
        await limiter.acquire("message/send")
    assert raised.value.retry_after == 60.0
    await limiter.acquire("kf/send_msg")  # every path has its own budget

    now[0] = 178.5  # 1.5 s before the next window: waiting beats deferring
    await limiter.acquire("externalcontact/mark_tag")
    await limiter.acquire("externalcontact/mark_tag")
    await limiter.acquire("externalcontact/mark_tag")
    assert slept == [1.5]


async def test_client_rate_limit_holds_calls_back_before_wecom(session, emulator, state):
    api = make_client(session, emulator, calls_per_minute=2, max_rate_wait=0)
    await api.externalcontact.get_corp_tag_list()
    await api.externalcontact.get_corp_tag_list()
    with pytest.raises(RateLimited) as raised:
        await api.externalcontact.get_corp_tag_list()
    assert raised.value.errcode == 45009 and 0 < raised.value.retry_after <= 60
    assert len(state.calls_to(TAGS)) == 2


# Observability


async def test_each_call_is_logged_and_counted_without_the_token(session, emulator, caplog):
    api = make_client(session, emulator)
    before = REGISTRY.get_sample_value("wecom_api_calls_total", {"endpoint": TAGS, "errcode": "0"}) or 0
    with caplog.at_level(logging.INFO, logger="bot.wecom.api"):
        await api.externalcontact.get_corp_tag_list()
        with pytest.raises(WeComAPIError):
            await api.externalcontact.get_contact_way("missing")
    token = await api.access_token()
    records = [r for r in caplog.records if r.name == "bot.wecom.api"]
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert token not in logged and EMULATOR_SECRET not in logged
    assert [(r.endpoint, r.errcode) for r in records] == [
        ("gettoken", "0"),
        (TAGS, "0"),
        ("externalcontact/get_contact_way", "41044"),
    ]
    assert all(r.latency_ms >= 0 for r in records)
    after = REGISTRY.get_sample_value("wecom_api_calls_total", {"endpoint": TAGS, "errcode": "0"})
    assert after == before + 1
    assert REGISTRY.get_sample_value("wecom_api_call_seconds_count", {"endpoint": TAGS}) >= 1


async def test_endpoint_groups_send_the_fields_wecom_expects(session, emulator, state):
    api = make_client(session, emulator)
    state.add_customer("wm1", follow="guide1")
    way = await api.externalcontact.add_contact_way(type=1, scene=2, user=["guide1"], state="store-1")
    assert way["qr_code"]
    await api.message.send(touser=["guide1", "guide2"], text={"content": "SOP due"})
    sent = await api.externalcontact.add_msg_template(
        sender="guide1", external_userid=["wm1"], text={"content": "Sale"}
    )
    result = await api.externalcontact.get_groupmsg_send_result(sent["msgid"], "guide1")
    assert result["send_list"][0]["status"] == 0
    profile = await api.externalcontact.get("wm1")
    assert profile["follow_user"][0]["userid"] == "guide1"
    bodies = {call["path"]: call["body"] for call in state.calls}
    assert bodies["message/send"] == {
        "touser": "guide1|guide2",
        "msgtype": "text",
        "agentid": EMULATOR_AGENT_ID,
        "text": {"content": "SOP due"},
    }
    assert state.calls_to("externalcontact/get")[0]["query"] == {"external_userid": "wm1"}
