"""The callback endpoint: official vectors, round trips with wechatpy, bad input, dedup."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select
from wechatpy.work.crypto import WeChatCrypto

from bot.app import create_app
from bot.services import SERVICES
from bot.storage.models import InboxEvent, Job
from bot.wecom.crypto import CallbackCrypto
from tests.callback.conftest import contact_event, post
from tests.conftest import TEST_AES_KEY, TEST_CORP_ID, TEST_TOKEN, VECTORS


async def counts(services, kind: str | None = "inbox.dispatch") -> tuple[int, int]:
    """(inbox rows, jobs of `kind` — when None, every job but the recurring ones queued at start-up)."""
    async with services.db.session() as session:
        inbox = await session.scalar(select(func.count()).select_from(InboxEvent))
        jobs = select(func.count()).select_from(Job)
        jobs = jobs.where(Job.kind == kind) if kind else jobs.where(Job.dedupe_key.is_(None) | Job.dedupe_key.not_like("cron:%"))
        jobs = await session.scalar(jobs)
    return inbox, jobs


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, run_jobs=False))


# --- official vectors, through HTTP -------------------------------------------------------------

async def test_official_url_verification_vector(aiohttp_client, make_settings):
    settings = make_settings(wecom_callback_max_skew_seconds=0)  # the sample is from 2014
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    v = VECTORS["verify"]
    response = await client.get("/wecom/callback", params={
        "msg_signature": v["msg_signature"], "timestamp": v["timestamp"], "nonce": v["nonce"],
        "echostr": v["echostr"]})
    assert response.status == 200
    assert await response.read() == v["expected_plaintext"].encode()  # exact: no quotes, no newline


async def test_official_message_vector_is_stored(aiohttp_client, make_settings):
    settings = make_settings(wecom_callback_max_skew_seconds=0)
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    v = VECTORS["post"]
    response = await client.post("/wecom/callback", data=v["body"], params={
        "msg_signature": v["msg_signature"], "timestamp": v["timestamp"], "nonce": v["nonce"]})
    assert response.status == 200 and await response.text() == ""
    services = client.app[SERVICES]
    async with services.db.session() as session:
        row = await session.scalar(select(InboxEvent))
    assert row.plaintext == v["expected_plaintext"]
    assert (row.kind, row.dedup_key, row.user_id) == ("text", "msg:4561255354251345929", "mycreate")


# --- round trips with an independent implementation -----------------------------------------------

async def test_wechatpy_encrypted_message_is_accepted(client):
    wechatpy = WeChatCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_CORP_ID)
    timestamp, nonce = str(int(time.time())), "12345"
    envelope = wechatpy.encrypt_message(contact_event("wmA"), nonce, timestamp)
    # wechatpy's reply envelope carries the signature in the XML; WeCom puts it in the query.
    import xmltodict

    fields = xmltodict.parse(envelope)["xml"]
    response = await client.post(
        "/wecom/callback",
        params={"msg_signature": fields["MsgSignature"], "timestamp": timestamp, "nonce": nonce},
        data=f"<xml><ToUserName>{TEST_CORP_ID}</ToUserName><Encrypt>{fields['Encrypt']}</Encrypt></xml>",
    )
    assert response.status == 200
    assert await counts(client.app[SERVICES]) == (1, 1)


def test_our_encryption_opens_with_wechatpy(crypto):
    sealed = crypto.seal(contact_event("wmB"))
    wechatpy = WeChatCrypto(TEST_TOKEN, TEST_AES_KEY, TEST_CORP_ID)
    plaintext = wechatpy.decrypt_message(sealed["body"], sealed["params"]["msg_signature"],
                                         sealed["params"]["timestamp"], sealed["params"]["nonce"])
    assert plaintext == contact_event("wmB")


# --- bad input: a clear status, nothing recorded --------------------------------------------------

@pytest.mark.parametrize(
    "case, status",
    [
        ("wrong_signature", 403),
        ("old_timestamp", 400),
        ("broken_outer_xml", 400),
        ("no_encrypt", 400),
        ("entity_expansion", 400),
        ("oversized", 413),
        ("wrong_receive_id", 403),
        ("garbage_ciphertext", 400),
        ("missing_params", 400),
        ("plaintext_not_xml", 400),
        ("plaintext_without_msgtype", 400),
    ],
)
async def test_bad_callbacks_are_refused_and_nothing_is_recorded(client, crypto, case, status):
    sealed = crypto.seal(contact_event("wmBad"))
    body, overrides = None, {}
    if case == "wrong_signature":
        overrides = {"msg_signature": "0" * 40}
    elif case == "old_timestamp":
        old = str(int(time.time()) - 3600)
        sealed = crypto.seal(contact_event("wmBad"), timestamp=old)
    elif case == "broken_outer_xml":
        body = "<xml><Encrypt>abc</Encr"
    elif case == "no_encrypt":
        body = "<xml><ToUserName>x</ToUserName></xml>"
    elif case == "entity_expansion":
        body = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                "<xml><Encrypt>&b;</Encrypt></xml>")
    elif case == "oversized":
        body = "<xml><Encrypt>" + "A" * 70_000 + "</Encrypt></xml>"
    elif case == "wrong_receive_id":
        sealed = CallbackCrypto(TEST_TOKEN, TEST_AES_KEY, "wwSomeoneElse").seal(contact_event("wmBad"))
    elif case == "garbage_ciphertext":
        garbage = "Zm9vYmFy" * 8
        sealed = {"params": {**sealed["params"]}, "body": f"<xml><Encrypt>{garbage}</Encrypt></xml>"}
        from bot.wecom.crypto import sign

        sealed["params"]["msg_signature"] = sign(TEST_TOKEN, sealed["params"]["timestamp"],
                                                 sealed["params"]["nonce"], garbage)
    elif case == "missing_params":
        response = await client.post("/wecom/callback", data=sealed["body"])
        assert response.status == status
        assert await counts(client.app[SERVICES], None) == (0, 0)
        return
    elif case == "plaintext_not_xml":
        sealed = crypto.seal("this is not xml")
    elif case == "plaintext_without_msgtype":
        sealed = crypto.seal("<xml><CreateTime>1</CreateTime></xml>")
    response = await post(client, sealed, body, **overrides)
    assert response.status == status, await response.text()
    assert "Traceback" not in await response.text()
    assert await counts(client.app[SERVICES], None) == (0, 0)


async def test_bad_url_verification_is_refused(client, crypto):
    sealed = crypto.seal("123")
    response = await client.get("/wecom/callback", params={
        **sealed["params"], "msg_signature": "f" * 40, "echostr": sealed["encrypted"]})
    assert response.status == 403
    response = await client.get("/wecom/callback", params={**sealed["params"], "echostr": sealed["encrypted"]})
    assert response.status == 200 and await response.text() == "123"


async def test_skew_zero_turns_the_window_off(aiohttp_client, make_settings, crypto):
    client = await aiohttp_client(create_app(make_settings(wecom_callback_max_skew_seconds=0), run_jobs=False))
    sealed = crypto.seal(contact_event("wmOld"), timestamp="1409659813")
    assert (await post(client, sealed)).status == 200


# --- dedup -------------------------------------------------------------------------------------

async def test_same_second_adds_delivered_three_times_are_kept_once_each(client, crypto):
    """100 customers add one guide in the same second; WeCom delivers each event 3 times at once."""
    second = int(time.time())
    sealed = [crypto.seal(contact_event(f"wmCustomer{i:03d}", "guide01", second)) for i in range(100)]
    deliveries = [post(client, s) for s in sealed for _ in range(3)]
    responses = await asyncio.gather(*deliveries)
    assert [r.status for r in responses] == [200] * 300
    services = client.app[SERVICES]
    assert await counts(services) == (100, 100)
    assert await counts(services, "customers.welcome") == (100, 100)  # written at intake, once each
    async with services.db.session() as session:
        customers = set(await session.scalars(select(InboxEvent.external_user_id)))
    assert customers == {f"wmCustomer{i:03d}" for i in range(100)}


async def test_retry_with_new_ciphertext_is_a_duplicate(client, crypto):
    plaintext = contact_event("wmRetry", create_time=int(time.time()))
    first, second = crypto.seal(plaintext), crypto.seal(plaintext)  # fresh random bytes and nonce
    assert first["body"] != second["body"]
    assert (await post(client, first)).status == 200
    assert (await post(client, second)).status == 200
    assert await counts(client.app[SERVICES]) == (1, 1)


def test_envelope_fast_path_agrees_with_the_parser(crypto):
    from bot.callback.views import _ENVELOPE, _encrypted_field
    from bot.wecom.events import parse_xml

    for body in (VECTORS["post"]["body"], crypto.seal(contact_event("wmFast"))["body"]):
        assert _ENVELOPE.match(body.encode())  # WeCom's shape takes the fast path
        assert _encrypted_field(body.encode()) == parse_xml(body)["Encrypt"]
    hostile = b'<!DOCTYPE xml [<!ENTITY a "x">]><xml><Encrypt><![CDATA[abc]]></Encrypt></xml>'
    assert not _ENVELOPE.match(hostile)  # anything else goes through the full parser
