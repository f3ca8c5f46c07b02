"""The landing page in a real browser (Playwright driving Debian's /usr/bin/chromium): no dead ends
when every guide is refused by WeCom, and a hint when location fails because of the connection or a
refused permission."""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from bot.lbs import from_gcj02
from tests.landing.conftest import CUSTOMER_GCJ

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# landing.test is an ordinary (not loopback) http origin, so the page is not a secure context there.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--host-resolver-rules=MAP landing.test 127.0.0.1"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}
AT_THE_CUSTOMER = dict(zip(("latitude", "longitude"), from_gcj02(*CUSTOMER_GCJ, "wgs84"), strict=True))


@pytest.fixture
async def browser():
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def open_page(landing, browser, code, host=None, **context_options):
    context = await browser.new_context(**PHONE, **context_options)
    page = await context.new_page()
    url = landing.client.make_url(f"/qr/{code}")
    await page.goto(str(url.with_host(host) if host else url))
    return page


async def test_when_every_guide_is_refused_the_customer_can_still_pick_another_store(landing, browser):
    code = await landing.seed(members=["dan"], fallback={"guide_userid": "ann"})  # only dan has WeCom
    page = await open_page(landing, browser, code, geolocation=AT_THE_CUSTOMER, permissions=["geolocation"])
    await page.wait_for_selector("#recover:not([hidden])", timeout=10_000)
    assert "暂时无法获取导购二维码" in await page.text_content("#status-text")
    assert await page.is_visible("#recover-picker") and await page.is_visible("#recover-fallback")
    assert await page.text_content("#recover-fallback") == "联系在线导购"

    await page.click("#recover-picker")  # 换一家门店
    await page.wait_for_selector("#picker:not([hidden])")
    await page.select_option("#city-select", "上海")
    await page.click("#store-list li:nth-child(2) button")  # 静安寺: its guide is refused too
    await page.wait_for_selector("#recover:not([hidden])")
    await page.click("#recover-picker")
    await page.select_option("#city-select", "北京")
    await page.click("#store-list li:first-child button")
    await page.wait_for_selector("#offer:not([hidden])")
    assert await page.text_content("#guide-name") == "丹丹"
    await page.screenshot(path="/tmp/landing-refused.png", full_page=True)


async def test_an_insecure_page_says_location_needs_https(landing, browser):
    code = await landing.seed()
    page = await open_page(landing, browser, code, host="landing.test", geolocation=AT_THE_CUSTOMER,
                           permissions=["geolocation"])
    await page.wait_for_selector("#picker:not([hidden])", timeout=10_000)
    assert await page.evaluate("window.isSecureContext") is False
    assert "HTTPS" in await page.text_content("#geo-hint") and await page.is_visible("#geo-hint")


async def test_a_refused_permission_says_how_to_allow_it(landing, browser):
    code = await landing.seed()
    page = await open_page(landing, browser, code, permissions=[])
    await page.wait_for_selector("#picker:not([hidden])", timeout=10_000)
    assert await page.evaluate("window.isSecureContext") is True
    hint = await page.text_content("#geo-hint")
    assert "允许" in hint and "HTTPS" not in hint
