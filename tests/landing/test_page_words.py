"""The page speaks to the customer: a public title (never the code's internal name), the brand and
the channel's new-member benefit; and the code's QR can be printed (PNG at ≥1,000 px, SVG as is)."""

from __future__ import annotations

import struct

import pytest

from bot.stores.web import DEFAULT_BENEFIT, DEFAULT_TITLE


async def page_of(landing, code) -> str:
    response = await landing.client.get(f"/qr/{code}")
    assert response.status == 200
    return await response.text()


async def test_public_title_brand_and_benefit_replace_the_internal_name(landing):
    landing.services.settings = landing.services.settings.model_copy(update={"brand_name": "优衣坊"})
    channel = {"code": "poster", "name": "门店海报", "benefit_text": "添加导购立得 20 元新人券"}
    code = await landing.seed(channel=channel, name="2026Q4 华东海报 A/B 测试组", public_title="领取您的专属导购")
    page = await page_of(landing, code)
    assert "<title>领取您的专属导购 - 优衣坊</title>" in page
    assert '<p class="brand" id="brand">优衣坊</p>' in page and '<h1 id="title">领取您的专属导购</h1>' in page
    assert '<p id="benefit">添加导购立得 20 元新人券</p>' in page
    assert "华东海报" not in page  # HQ's label stays internal
    listed = await landing.api("GET", "/api/v1/qrcodes", 200)
    assert listed["qrcodes"][0]["public_title"] == "领取您的专属导购"

    await landing.api("PATCH", f"/api/v1/qrcodes/{code}", 200, json={"public_title": "会员福利"})
    assert "<h1 id=\"title\">会员福利</h1>" in await page_of(landing, code)


async def test_without_words_the_page_uses_neutral_defaults(landing):
    code = await landing.seed(name="内部测试码")
    page = await page_of(landing, code)
    assert f"<title>{DEFAULT_TITLE}</title>" in page and f'<p id="benefit">{DEFAULT_BENEFIT}</p>' in page
    assert '<p class="brand" id="brand"></p>' in page and "内部测试码" not in page


async def test_the_benefit_falls_back_to_the_channels_coupon(landing):
    await landing.api("POST", "/api/v1/coupon-templates", 201,
                      json={"code": "NEW20", "name": "新人 20 元券", "kind": "cash", "value_fen": 2000, "valid_days": 7})
    code = await landing.seed(channel={"code": "poster", "name": "门店海报", "benefit_template_code": "NEW20"})
    assert '<p id="benefit">添加导购即享新人礼：新人 20 元券</p>' in await page_of(landing, code)


async def test_words_are_escaped_and_never_substituted_twice(landing):
    landing.services.settings = landing.services.settings.model_copy(update={"brand_name": "{{code}}"})
    code = await landing.seed(public_title="<script>alert(1)</script>")
    page = await page_of(landing, code)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<p class="brand" id="brand">{{code}}</p>' in page


def png_width(data: bytes) -> int:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">I", data[16:20])[0]


async def test_the_png_can_be_asked_for_at_print_size_and_the_svg_is_unchanged(landing):
    code = await landing.seed()
    screen = await (await landing.client.get(f"/qr/{code}.png")).read()
    assert png_width(screen) < 1000
    response = await landing.client.get(f"/qr/{code}.png?size=1200")
    assert response.status == 200 and response.content_type == "image/png"
    assert 1200 <= png_width(await response.read()) < 1300
    svg = await landing.client.get(f"/qr/{code}.svg")
    assert svg.content_type == "image/svg+xml" and (await svg.text()).startswith("<svg")


@pytest.mark.parametrize("size", ["abc", "99", "100000", "-5", "1e3"])
async def test_a_bad_png_size_is_a_400_naming_it(landing, size):
    code = await landing.seed()
    response = await landing.client.get(f"/qr/{code}.png", params={"size": size})
    data = await response.json()
    assert response.status == 400 and data["error"]["details"][0]["field"] == "size"
