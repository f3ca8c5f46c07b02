"""Anonymous visitors cannot hurt the service through the public landing routes."""

from __future__ import annotations

import asyncio

import pytest

from tests.landing.conftest import CUSTOMER_GCJ

ROUTES = ("locate", "choose")


async def _raw_request(landing, head: str, body: bytes) -> bytes:
    """Send a request head and part of a body, never finish it, and read whatever the server answers."""
    server = landing.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head.encode() + body)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=3)
    finally:
        writer.close()


@pytest.mark.parametrize("step", ROUTES)
async def test_an_announced_oversized_body_is_refused_before_it_is_sent(landing, step):
    code = await landing.seed()
    head = (f"POST /qr/{code}/{step} HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
            f"Content-Length: {2 * 1024 * 1024}\r\n\r\n")
    answer = await _raw_request(landing, head, b"{" + b" " * 100)  # the other 2 MB never come
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert await landing.funnel() == []


@pytest.mark.parametrize("step", ROUTES)
async def test_a_chunked_body_is_read_only_up_to_the_limit(landing, step):
    code = await landing.seed()
    head = (f"POST /qr/{code}/{step} HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    chunk = b" " * 8192
    answer = await _raw_request(landing, head, b"%x\r\n%s\r\n" % (len(chunk), chunk))  # and more would follow
    assert answer.startswith(b"HTTP/1.1 413 ")


async def test_a_body_under_the_limit_is_read_whole(landing):
    code = await landing.seed()
    body = b'{"lat": %f, "lng": %f, "coord_system": "gcj02"}' % CUSTOMER_GCJ + b" " * 3000
    status, offer = await landing.post(code, "locate", data=body, headers={"Content-Type": "application/json"})
    assert status == 200 and offer["store"]["code"] == "SH001"


@pytest.mark.parametrize("step", ROUTES)
@pytest.mark.parametrize("body", [
    b"[" * 1500 + b"]" * 1500,
    b'{"lat": ' + b"[" * 1000 + b"]" * 1000 + b', "lng": 1}',
    b'{"lat": ' + b"9" * 4301 + b', "lng": 121.47}',
])
async def test_pathological_json_is_a_400_not_a_500(landing, monkeypatch, step, body):
    # A bigger body limit, so the parser itself meets the 4,301-digit integer (4 KiB refuses it first).
    monkeypatch.setattr("bot.stores.web.MAX_BODY_BYTES", 16 * 1024)
    code = await landing.seed()
    status, data = await landing.post(code, step, data=body, headers={"Content-Type": "application/json"})
    assert status == 400 and data["error"]["code"] in {"malformed_json", "invalid_request"}, data
    assert await landing.funnel() == []


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
async def test_non_finite_coordinates_are_a_400_naming_the_field(landing, literal):
    code = await landing.seed()
    for body in (b'{"lat": %s, "lng": 121.47}' % literal, b'{"lat": 31.2, "lng": %s}' % literal):
        status, data = await landing.post(code, "locate", data=body, headers={"Content-Type": "application/json"})
        assert status == 400, data
        field = "lat" if body.startswith(b'{"lat": ' + literal) else "lng"
        assert data["error"]["code"] in {"malformed_json", "invalid_request"}
        assert field in data["error"]["message"] + str(data["error"]["details"])
    assert await landing.funnel() == []


async def test_page_loads_from_one_visitor_write_a_bounded_number_of_funnel_rows(landing):
    from bot.stores.funnel import VISITOR_ROWS_PER_MINUTE

    code = await landing.seed()
    for _ in range(VISITOR_ROWS_PER_MINUTE + 15):
        response = await landing.client.get(f"/qr/{code}")
        assert response.status == 200 and f'data-code="{code}"' in await response.text()
    scans = [row for row in await landing.funnel() if row.step == "scan"]
    assert len(scans) == VISITOR_ROWS_PER_MINUTE
    # Another code's page from the same visitor is counted apart.
    other = await landing.api("POST", "/api/v1/qrcodes", 201, json={"channel_code": "poster"})
    assert (await landing.client.get(f"/qr/{other['code']}")).status == 200
    assert [row.qrcode_code for row in await landing.funnel()][-1] == other["code"]


async def test_locates_from_one_visitor_are_all_answered_but_recorded_within_the_allowance(landing):
    from bot.stores.funnel import VISITOR_ROWS_PER_MINUTE

    code = await landing.seed(guide_rule="fixed")
    body = {"lat": CUSTOMER_GCJ[0], "lng": CUSTOMER_GCJ[1], "coord_system": "gcj02"}
    for _ in range(VISITOR_ROWS_PER_MINUTE + 5):
        status, offer = await landing.post(code, "locate", body)
        assert status == 200 and offer["guide"]["userid"] == "ann"
    assert len([row for row in await landing.funnel() if row.step == "locate"]) == VISITOR_ROWS_PER_MINUTE


async def test_the_page_renders_and_counts_the_scan_when_the_kv_store_is_down(landing, monkeypatch):
    from bot.kv import KVUnavailable

    code = await landing.seed()

    async def unavailable(*args, **kwargs):
        raise KVUnavailable("redis is down")

    monkeypatch.setattr(landing.services.kv, "incr", unavailable)
    response = await landing.client.get(f"/qr/{code}")
    assert response.status == 200 and f'data-code="{code}"' in await response.text()
    assert [row.step for row in await landing.funnel()] == ["scan"]
