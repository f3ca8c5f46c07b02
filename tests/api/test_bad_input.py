"""Inputs the fuzzer found answering 500: each is now a 400 (or 401) naming the problem, and nothing
is written."""

from __future__ import annotations

import pytest

DEEP = "[" * 1000 + "]" * 1000
HUGE_INT = "1" * 4400
BEYOND_64_BITS = str(2**64)


@pytest.mark.parametrize("body", [DEEP, '{"code": ' + HUGE_INT + "}", '{"name": NaN}'])
async def test_json_the_parser_refuses_is_malformed_json(seeded, body):
    response = await seeded.client.post("/api/v1/stores", headers={**seeded.auth["hq"],
                                        "Content-Type": "application/json"}, data=body)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_json"


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/events?before_id=" + BEYOND_64_BITS, "before_id"),
    ("/api/v1/customers?before_id=" + BEYOND_64_BITS, "before_id"),
    ("/api/v1/members/{member_no}/ledger?before_id=" + BEYOND_64_BITS, "before_id"),
])
async def test_query_integers_beyond_64_bits_name_the_field(seeded, path, field):
    response = await seeded.client.get(path.format(**seeded.ids), headers=seeded.auth["hq"])
    assert response.status == 400
    assert [d["field"] for d in (await response.json())["error"]["details"]] == [field]


async def test_a_job_id_beyond_64_bits_names_the_field(seeded):
    response = await seeded.client.post(f"/api/v1/jobs/{BEYOND_64_BITS}/retry", headers=seeded.auth["hq"])
    assert response.status == 400
    assert [d["field"] for d in (await response.json())["error"]["details"]] == ["job_id"]


@pytest.mark.parametrize("field", ["value_fen", "stock", "min_spend_fen", "per_member_limit", "points_price"])
async def test_template_integers_beyond_the_column_name_the_field(seeded, field):
    body = {"code": "BIG", "name": "大", "kind": "cash", "value_fen": 100, "valid_days": 3, field: 2**64}
    response = await seeded.client.post("/api/v1/coupon-templates", headers=seeded.auth["hq"], json=body)
    assert response.status == 400
    assert [d["field"] for d in (await response.json())["error"]["details"]] == [field]
    listed = await (await seeded.client.get("/api/v1/coupon-templates", headers=seeded.auth["hq"])).json()
    assert "BIG" not in [t["code"] for t in listed["templates"]]


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/stores/{code}", "name"), ("/api/v1/stores/{code}", "status"),
    ("/api/v1/guides/{userid}", "store_code"), ("/api/v1/guides/{userid}", "daily_add_limit"),
    ("/api/v1/qrcodes/{qrcode}", "fallback"), ("/api/v1/qrcodes/{qrcode}", "radius_m"),
])
async def test_null_in_a_patch_is_refused_and_nothing_is_saved(seeded, path, field):
    client, hq = seeded.client, seeded.auth["hq"]
    response = await client.patch(path.format(**seeded.ids), headers=hq, json={field: None})
    assert response.status == 400, await response.text()
    assert [d["field"] for d in (await response.json())["error"]["details"]] == [field]
    for listing in ("/api/v1/stores", "/api/v1/guides", "/api/v1/qrcodes"):
        assert (await client.get(listing, headers=hq)).status == 200
    code = seeded.ids["qrcode"]
    assert (await client.get(f"/qr/{code}/stores")).status == 200


async def test_a_null_that_a_column_allows_is_still_accepted(seeded):
    response = await seeded.client.patch("/api/v1/stores/S1", headers=seeded.auth["hq"],
                                         json={"opening_hours": None, "lat": None, "lng": None})
    assert response.status == 200
    assert (await response.json())["lat"] is None


@pytest.mark.parametrize("query", ["since=0001-01-01", "until=9999-12-31", "since=0001-01-01&until=0001-01-02",
                                   "since=9999-12-30&until=9999-12-31"])
@pytest.mark.parametrize("path", ["/api/v1/stats/funnel", "/api/v1/stats/guides"])
async def test_stats_at_the_ends_of_the_calendar_answer(seeded, path, query):
    response = await seeded.client.get(f"{path}?{query}", headers=seeded.auth["hq"])
    assert response.status == 200, await response.text()
    assert (await response.json())["rows"] == []


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/api/v1/stores", {"code": "S9", "name": "a\u0000b"}, "name"),
    ("POST", "/api/v1/channels", {"code": "C9", "name": "x", "tag_names": ["ok", "a\u0000"]}, "tag_names.1"),
    ("GET", "/api/v1/stores?city=%00", None, "city"),
    ("GET", "/api/v1/stores/%00", None, "code"),
    ("GET", "/api/v1/customers/wm%00", None, "external_userid"),
    ("POST", "/api/v1/coupons/{coupon}/redeem", {"idempotency_key": "k", "member_no": "\ud800"}, "member_no"),
    ("POST", "/api/v1/guides/g1/handover", {"takeover_userid": "\udc00"}, "takeover_userid"),
])
async def test_nul_and_lone_surrogates_are_refused_naming_the_field(seeded, method, path, body, field):
    import json

    data = None if body is None else json.dumps(body)  # json.dumps escapes a lone surrogate as \\udXXX
    response = await seeded.client.request(method, path.format(**seeded.ids), data=data, headers={
        **seeded.auth["hq"], "Content-Type": "application/json"})
    assert response.status == 400, await response.text()
    assert [d["field"] for d in (await response.json())["error"]["details"]] == [field]


@pytest.mark.parametrize("token", [b"wa_\xe9t\xe9", b"\xff\xfe", "wa_caf\u00e9".encode()])
async def test_a_token_with_bytes_beyond_ascii_is_unauthenticated(seeded, token):
    # Raw bytes on the wire: an HTTP client would re-encode the header as UTF-8.
    import asyncio

    server = seeded.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /api/v1/stores HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                 b"Authorization: Bearer " + token + b"\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"401", status_line


@pytest.mark.parametrize("content_type", ["application/json; charset=no-such-codec", "application/json; charset=utf-16"])
async def test_a_body_in_a_charset_that_does_not_decode_is_malformed_json(seeded, content_type):
    response = await seeded.client.post("/api/v1/stores", data=b'{"code": "S9", "name": "x"}', headers={
        **seeded.auth["hq"], "Content-Type": content_type})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_json"
