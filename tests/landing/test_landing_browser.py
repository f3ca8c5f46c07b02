"""The landing page in a real browser (Playwright driving Debian's chromium, /usr/bin/chromium).

Geolocation granted at a known point shows the nearest store's guide and their QR; denied, the
city → store picker and the online-guide fallback still get the customer to a guide.
"""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from bot.lbs import from_gcj02
from tests.stores.conftest import CUSTOMER_GCJ, lbs_world_on


@pytest.fixture
async def lbs_world(world):
    return await lbs_world_on(world)


pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}


@pytest.fixture
async def browser():
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def test_granted_location_shows_the_nearest_stores_guide(lbs_world, browser):
    world = lbs_world
    code = await world.seed(guide_rule="fixed")
    lat, lng = from_gcj02(*CUSTOMER_GCJ, "wgs84")  # what the phone's GPS reports there
    context = await browser.new_context(**PHONE, geolocation={"latitude": lat, "longitude": lng},
                                        permissions=["geolocation"])
    page = await context.new_page()
    await page.goto(str(world.client.make_url(f"/qr/{code}")))
    await page.wait_for_selector("#offer:not([hidden])", timeout=10_000)
    assert await page.text_content("#store-name") == "上海人民广场店"
    assert await page.text_content("#guide-name") == "安娜"
    distance = await page.text_content("#store-distance")
    assert distance.startswith("距您 ") and distance.endswith(" 米")
    assert 250 <= int(distance.split()[1]) <= 400
    qr_src = await page.get_attribute("#guide-qr", "src")
    assert qr_src in {w["qr_code"] for w in world.emulator.contact_ways.values()}
    await page.wait_for_function("document.getElementById('guide-qr').naturalWidth > 0")  # the image loads
    assert await page.locator("#nearby li").all_text_contents() == [
        "上海静安寺店距您 3.0 公里"]
    await page.screenshot(path="/tmp/landing-granted.png", full_page=True)

    # Tapping another nearby store switches the offer to that store's guide.
    await page.click("#nearby li button")
    await page.wait_for_function("document.getElementById('store-name').textContent === '上海静安寺店'")
    assert await page.text_content("#guide-name") == "蔡晨"
    await context.close()


async def test_denied_location_offers_the_city_picker_and_fallback(lbs_world, browser):
    world = lbs_world
    code = await world.seed(fallback={"guide_userid": "dan"})
    context = await browser.new_context(**PHONE, permissions=[])
    page = await context.new_page()
    await page.goto(str(world.client.make_url(f"/qr/{code}")))
    await page.wait_for_selector("#picker:not([hidden])", timeout=10_000)
    assert await page.text_content("#status-text") == "未能获取您的位置"
    await page.wait_for_selector("#fallback-btn:not([hidden])")
    await page.select_option("#city-select", "上海")
    names = [n.strip() for n in await page.locator("#store-list li button span:first-child").all_text_contents()]
    assert names == ["上海人民广场店", "上海静安寺店"]  # the closed store is not offered
    await page.screenshot(path="/tmp/landing-denied.png", full_page=True)
    await page.click("#store-list li:nth-child(2) button")
    await page.wait_for_selector("#offer:not([hidden])")
    assert await page.text_content("#store-name") == "上海静安寺店"
    assert await page.text_content("#guide-name") == "蔡晨"

    await page.click("#show-picker")
    await page.click("#fallback-btn")
    await page.wait_for_function("document.getElementById('guide-name').textContent === '丹丹'")
    assert await page.text_content("#offer-note") == "为您安排在线导购："
    await context.close()
