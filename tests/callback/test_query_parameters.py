"""Odd query parameters (non-ASCII digits, huge values, lone surrogates) get a 4xx, never a 500."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.services import SERVICES
from bot.storage.models import InboxEvent
from bot.wecom.crypto import sign
from tests.callback.conftest import contact_event
from tests.conftest import TEST_TOKEN

ODD_TIMESTAMPS = {"superscript_two": "²", "circled_one": "①", "4300_digits": "1" * 4300,
                  "arabic_indic": "١٧٠٠٠٠٠٠٠٠", "negative": "-5", "spaces": " 1700000000"}


@pytest.fixture(params=[600, 0], ids=["window_on", "window_off"])
async def client(request, aiohttp_client, make_settings, tmp_path):
    settings = make_settings(wecom_callback_max_skew_seconds=request.param,
                             callback_spool_path=str(tmp_path / "spool.sqlite3"))
    return await aiohttp_client(create_app(settings, run_jobs=False))


def signed(crypto, plaintext: str, *, timestamp: str | None = None, nonce: str = "1234567890") -> dict:
    """Sealed with these exact query values, and a signature that matches them."""
    sealed = crypto.seal(plaintext)
    timestamp = timestamp if timestamp is not None else str(int(time.time()))
    params = {"timestamp": timestamp, "nonce": nonce,
              "msg_signature": sign(TEST_TOKEN, timestamp, nonce, sealed["encrypted"])}
    return {**sealed, "params": params}


async def assert_refused(client, response, status: int, field: str) -> None:
    text = await response.text()
    assert response.status == status, text
    assert field in text and "Traceback" not in text
    async with client.app[SERVICES].db.session() as session:
        assert await session.scalar(select(func.count()).select_from(InboxEvent)) == 0


@pytest.mark.parametrize("timestamp", ODD_TIMESTAMPS.values(), ids=ODD_TIMESTAMPS.keys())
async def test_odd_timestamp_on_a_callback_is_400(client, crypto, timestamp):
    sealed = signed(crypto, contact_event("wmOddTime"), timestamp=timestamp)
    response = await client.post("/wecom/callback", params=sealed["params"], data=sealed["body"])
    await assert_refused(client, response, 400, "timestamp")


@pytest.mark.parametrize("timestamp", ODD_TIMESTAMPS.values(), ids=ODD_TIMESTAMPS.keys())
async def test_odd_timestamp_on_url_verification_is_400(client, crypto, timestamp):
    sealed = signed(crypto, "echo-123", timestamp=timestamp)
    response = await client.get("/wecom/callback", params={**sealed["params"], "echostr": sealed["encrypted"]})
    await assert_refused(client, response, 400, "timestamp")


@pytest.mark.parametrize("nonce", ["n" * 5000, "a\x00b", "line\nbreak"], ids=["huge", "nul", "newline"])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_odd_nonce_is_400(client, crypto, nonce, method):
    sealed = signed(crypto, contact_event("wmOddNonce") if method == "POST" else "echo", nonce=nonce)
    if method == "POST":
        response = await client.post("/wecom/callback", params=sealed["params"], data=sealed["body"])
    else:
        response = await client.get("/wecom/callback", params={**sealed["params"], "echostr": sealed["encrypted"]})
    await assert_refused(client, response, 400, "nonce")


async def test_a_signed_non_ascii_nonce_is_accepted(client, crypto):
    sealed = signed(crypto, contact_event("wmHanziNonce"), nonce="随机数")
    response = await client.post("/wecom/callback", params=sealed["params"], data=sealed["body"])
    assert response.status == 200


@pytest.mark.parametrize("signature", ["签名" * 20, "f" * 5000, "g" * 40, "%ED%A0%80" * 5, "%FF" * 40],
                         ids=["hanzi", "huge", "not_hex", "lone_surrogates", "invalid_utf8"])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_odd_signature_is_403(client, crypto, signature, method):
    sealed = signed(crypto, contact_event("wmOddSig") if method == "POST" else "echo")
    url = client.make_url("/wecom/callback")
    query = (f"timestamp={sealed['params']['timestamp']}&nonce={sealed['params']['nonce']}"
             f"&msg_signature={signature}")
    if method == "POST":
        response = await client.session.post(f"{url}?{query}", data=sealed["body"])
    else:
        response = await client.session.get(f"{url}?{query}&echostr={sealed['encrypted'].replace('+', '%2B')}")
    await assert_refused(client, response, 403, "msg_signature")


@pytest.mark.parametrize("encoded", ["%ED%A0%80", "%FF%FE"], ids=["lone_surrogate", "invalid_utf8"])
async def test_undecodable_nonce_bytes_are_refused_by_the_signature(client, crypto, encoded):
    """aiohttp decodes them to U+FFFD: a nonce nobody signed, so 403, not a 500 from .encode()."""
    sealed = signed(crypto, contact_event("wmOddBytes"))
    url = client.make_url("/wecom/callback")
    query = f"timestamp={sealed['params']['timestamp']}&nonce=ab{encoded}&msg_signature={'0' * 40}"
    response = await client.session.post(f"{url}?{query}", data=sealed["body"])
    await assert_refused(client, response, 403, "msg_signature")
