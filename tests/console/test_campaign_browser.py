"""A campaign in a real browser, end to end through the WeCom emulator: built in the wizard (the
audience's live count as the store filter changes, the message preview and its byte counter, a
coupon), approved and launched from its page; the guides confirm their group sends in the
emulator; the result page then shows the delivery and the order it converted."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.async_api import expect

from bot.api.auth import Role, create_token
from bot.console.accounts import create_user
from bot.emulator.api_groupmsg import confirm_group_send
from tests.campaigns.conftest import CARE, GUIDES, STORES, outreach_settings  # noqa: F401 (a fixture)
from tests.console.conftest import PASSWORD
from tests.console.test_browser import (  # noqa: F401
    PHONE,
    assert_fits,
    browser,
    choose,
    console_build,
    open_page,
    shot,
    sign_in,
)

CUSTOMERS = {"ann": ["wmA1", "wmA2", "wmA3"], "bo": ["wmB1", "wmB2"], "cai": ["wmC1"], "dan": ["wmD1"]}
pytestmark = pytest.mark.browser

TEXT = "您好，我是{guide_name}。双十二会员专享，送您一张20元关怀券，到店出示即可使用。"


async def shop(world) -> str:
    """Two stores, four guides, the care coupon and seven bound customers; the integration token."""
    db = world.services.db
    hq = {"Authorization": f"Bearer {await create_token(db, Role.HQ_ADMIN, name='hq')}"}
    for store in STORES:
        assert (await world.client.post("/api/v1/stores", json=store, headers=hq)).status == 201
    for guide in GUIDES:
        world.emulator.add_member(guide["userid"], guide["name"])
        assert (await world.client.post("/api/v1/guides", json=guide, headers=hq)).status == 201
    assert (await world.client.post("/api/v1/coupon-templates", json=CARE, headers=hq)).status == 201
    for guide, customers in CUSTOMERS.items():
        for external_userid in customers:
            result = await world.driver.customer_adds_guide(external_userid, guide, name=f"客户{external_userid}")
            assert result["http_status"] == 200
    await world.settle(timeout=30)
    await create_user(db, "hq", PASSWORD, "hq_admin")
    return await create_token(db, Role.INTEGRATION, name="till")


async def test_build_approve_and_launch_a_campaign_then_see_its_results(browser, world, outreach_settings):  # noqa: F811
    till = await shop(world)
    watched = await open_page(browser, world.client)
    page = watched.page
    await sign_in(watched, "hq", "/console/campaigns")

    # Audience: the live count answers for every store, then for the one chosen.
    await page.click("[data-test=new-campaign]")
    await page.fill("input[name=campaign_name]", "双十二会员关怀")
    total = page.locator("[data-test=audience-count] .big")
    await expect(total).to_have_text(re.compile(r"^\s*7\s*人"))
    await choose(page, "[data-test=audience-stores]", "上海一店")
    await page.click("input[name=campaign_name]")  # closes the dropdown (Escape would close the dialog)
    await expect(total).to_have_text(re.compile(r"^\s*5\s*人"))
    await expect(page.locator("[data-test=audience-count]")).to_contain_text("上海一店")
    await shot(page, "campaign-wizard-audience")

    # Content: the phone preview fills in a guide's name; the counter counts UTF-8 bytes.
    await page.click("[data-test=next]")
    await page.fill("textarea[name=text]", TEXT)
    await expect(page.locator("[data-test=byte-counter]")).to_have_text(f"{len(TEXT.encode())} / 4000 字节")
    await expect(page.locator("[data-test=message-preview]")).to_contain_text("您好，我是小王。双十二会员专享")
    await shot(page, "campaign-wizard-content")

    await page.click("[data-test=next]")
    await choose(page, "[data-test=benefit]", "关怀券")
    await page.click("[data-test=next]")
    await page.fill("input[name=holdout_percent]", "0")
    await page.press("input[name=holdout_percent]", "Tab")
    await page.click("[data-test=create-campaign]")

    await expect(page).to_have_url(re.compile(r"/console/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[-1])
    status = page.locator("h2 .el-tag")
    await expect(status).to_have_text("草稿")
    await page.click("[data-test=action-approve]")
    await expect(status).to_have_text("已审批")
    await page.click("[data-test=action-launch]")
    await expect(status).not_to_have_text("已审批")
    await world.settle(timeout=30)
    stored = await page.evaluate(f"fetch('/api/v1/campaigns/{campaign_id}').then(r => r.json())")
    assert (stored["audience"], stored["benefit"], stored["holdout_percent"]) == (
        {"stores": ["SH01"]}, {"coupon_template_code": "CARE20"}, 0)

    # Each guide confirms their own task in WeCom (the emulator), one per guide of 上海一店.
    sends = list(world.emulator.group_sends.values())
    assert sorted(send.creator for send in sends) == ["ann", "bo"]
    for send in sends:
        assert send.text["content"].startswith(f"您好，我是{ {'ann': '安娜', 'bo': '薄波'}[send.creator] }。")
        confirm_group_send(world.emulator, send.msgid)
    await page.click("[data-test=action-sync]")
    await expect(page.locator("[data-test=sent]")).to_have_text("5")
    await expect(page.locator(".stat", has_text="导购已确认")).to_contain_text("2 / 2")

    # An order inside the attribution window converts.
    order = {"order_no": "DEC12-1", "external_userid": "wmA1", "channel": "online", "amount_fen": 12800,
             "paid_at": (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()}
    answer = await world.client.post("/api/v1/orders", json=order, headers={"Authorization": f"Bearer {till}"})
    assert answer.status == 201, await answer.text()
    await page.reload()
    await expect(page.locator("[data-test=orders]")).to_have_text("1")
    await expect(page.locator("main")).to_contain_text("¥128.00")
    by_store = page.locator("[data-test=by_store]")
    await expect(by_store).to_contain_text("SH01")
    await expect(page.locator("[data-test=by_guide]")).to_contain_text("bo")
    await shot(page, "campaign-result")
    assert watched.unexpected_errors() == []

    # A store manager's phone: the result page and the wizard fit the screen.
    phone = await open_page(browser, world.client, PHONE)
    await sign_in(phone, "hq", page.url.removeprefix(phone.base))
    await expect(phone.page.locator("[data-test=orders]")).to_have_text("1")
    await shot(phone.page, "phone-campaign-result")
    await assert_fits(phone.page, PHONE)
    await phone.page.goto(phone.url("/console/campaigns"))
    await phone.page.click("[data-test=new-campaign]")
    # The live count has answered (the five just reached are now under the frequency cap).
    await expect(phone.page.locator("[data-test=audience-count] .big")).to_have_text(re.compile(r"^\s*\d+\s*人"))
    await expect(phone.page.locator("[data-test=excluded]")).to_have_text("排除：触达频次已满 5 人；")
    await shot(phone.page, "phone-campaign-wizard-audience")
    await phone.page.click("[data-test=next]")
    await phone.page.fill("textarea[name=text]", TEXT)
    await expect(phone.page.locator("[data-test=message-preview]")).to_contain_text("您好，我是小王。")
    await shot(phone.page, "phone-campaign-wizard-content")
    dialog = await phone.page.locator(".el-dialog").bounding_box()
    assert dialog["x"] >= 0 and dialog["x"] + dialog["width"] <= PHONE["viewport"]["width"] + 1, dialog
    assert phone.unexpected_errors() == []
