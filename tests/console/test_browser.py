"""The console in a real browser (Playwright driving Debian's chromium, /usr/bin/chromium) against
the running service: sign-in, forms with the API's field errors, codes and their PNG, customers,
a store manager's scope, CSRF, expiry. Screenshots of every page go to console/artifacts/."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect
from sqlalchemy import select, update

from bot.console import views
from bot.console.models import ConsoleSession
from bot.services import SERVICES
from tests.console.conftest import PASSWORD, seed_activity

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "console" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"viewport": {"width": 1280, "height": 860}, "locale": "zh-CN"}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}


@pytest.fixture(scope="session")
def console_build() -> Path:
    """The built console; built here with npm when missing (scripts/test builds it beforehand)."""
    if not (views.STATIC / "index.html").is_file():
        npm = shutil.which("npm")
        assert npm, "the console is not built and npm is missing: install Node.js 20+ and run ./scripts/test"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT / "console", check=True)
        subprocess.run([npm, "run", "build"], cwd=ROOT / "console", check=True)
    ARTIFACTS.mkdir(exist_ok=True)
    return views.STATIC


@pytest.fixture
async def browser(console_build):
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, page: Page, base: str) -> None:
        self.page, self.base, self.errors = page, base, []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def url(self, path: str) -> str:
        return self.base + path

    def unexpected_errors(self, *allowed: str) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in allowed)]


async def open_page(browser, console, device=DESKTOP) -> Watched:
    context = await browser.new_context(**device, accept_downloads=True)
    return Watched(await context.new_page(), str(console.make_url("")).rstrip("/"))


async def sign_in(watched: Watched, username: str, path: str = "/console/") -> None:
    page = watched.page
    await page.goto(watched.url(path))
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.press("input[name=password]", "Enter")
    await page.wait_for_selector("[data-test=who]")


async def shot(page: Page, name: str) -> None:
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def assert_fits(page: Page, device: dict) -> None:
    """Nothing scrolls the page sideways, nor sticks out of the content area (it would be cut off)."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= device["viewport"]["width"] + 1, f"{page.url} scrolls sideways at {width}px"
    inner, shown = await page.evaluate("[document.querySelector('main').scrollWidth, document.querySelector('main').clientWidth]")
    assert inner <= shown + 1, f"{page.url}: content {inner}px wide in a {shown}px content area"


async def choose(page: Page, select: str, option: str) -> None:
    await page.click(select)
    await page.locator(".el-select-dropdown__item:visible", has_text=option).first.click()


async def test_wrong_password_then_sign_in_and_out(browser, console):
    watched = await open_page(browser, console)
    page = watched.page
    await page.goto(watched.url("/console/customers"))
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/customers$"))
    await shot(page, "sign-in")
    await page.fill("input[name=username]", "hq")
    await page.fill("input[name=password]", "not the password")
    await page.press("input[name=password]", "Enter")
    await expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误")
    assert await page.input_value("input[name=password]") == ""
    await page.fill("input[name=password]", PASSWORD)
    await page.press("input[name=password]", "Enter")
    await expect(page).to_have_url(re.compile(r"/console/customers$"))  # back where they were going
    await page.click("[data-test=sign-out]")
    await expect(page).to_have_url(re.compile(r"/console/sign-in"))
    await page.goto(watched.url("/console/"))
    await expect(page).to_have_url(re.compile(r"/console/sign-in"))
    assert watched.unexpected_errors("status of 401") == []


async def test_create_store_guide_channel_and_code_then_download_its_png(browser, console):
    watched = await open_page(browser, console)
    page = watched.page
    await sign_in(watched, "hq", "/console/stores")

    # A bad code: the API's problem is shown at the field, nothing is created.
    await page.click("[data-test=new-store]")
    form = page.locator("[data-test=store-form]")
    await form.locator("input[name=code]").fill("GZ 001")
    await form.locator("input[name=name]").fill("广州天河店")
    await page.click("[data-test=save-store]")
    await expect(form.locator(".el-form-item__error")).to_contain_text("只能包含字母、数字")
    await shot(page, "store-form-field-error")
    await form.locator("input[name=code]").fill("GZ001")
    await form.locator("input[name=city]").fill("广州")
    await form.locator("input[name=hours]").fill("mon-sun 10:00-22:00")
    await page.click("[data-test=save-store]")
    await expect(page.locator("[data-test=stores]")).to_contain_text("广州天河店")

    await page.get_by_role("tab", name="导购").click()
    await page.click("[data-test=new-guide]")
    guide_form = page.locator("[data-test=guide-form]")
    await guide_form.locator("input[name=userid]").fill("wang")
    await guide_form.locator("input[name=name]").fill("王芳")
    await choose(page, "[data-test=guide-store]", "广州天河店")
    await page.click("[data-test=save-guide]")
    await expect(page.locator("[data-test=guides]")).to_contain_text("王芳")
    await shot(page, "stores-guides")

    await page.click("text=渠道与聚合码")
    await page.click("[data-test=new-channel]")
    channel_form = page.locator("[data-test=channel-form]")
    await channel_form.locator("input[name=code]").fill("poster")
    await channel_form.locator("input[name=name]").fill("门店海报")
    await channel_form.locator("textarea[name=welcome_text]").fill("您好，我是您的专属导购")
    await page.click("[data-test=save-channel]")
    await expect(page.locator("[data-test=channels]")).to_contain_text("门店海报")
    await page.click("[data-test=new-code]")
    code_form = page.locator("[data-test=code-form]")
    await code_form.locator("input[name=name]").fill("天河海报码")
    await code_form.locator("input[name=fallback_store]").fill("NOPE")
    await page.click("[data-test=save-code]")
    await expect(code_form.locator(".el-form-item__error")).to_contain_text("门店 NOPE 不存在")
    await code_form.locator("input[name=fallback_store]").fill("GZ001")
    await page.click("[data-test=save-code]")
    await expect(page.locator("[data-test=codes]")).to_contain_text("天河海报码")
    await shot(page, "channels-codes")

    async with page.expect_download() as download_info:
        await page.locator("[data-test=png]").first.click()
    download = await download_info.value
    saved = ARTIFACTS / "downloaded-code.png"
    await download.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert download.suggested_filename.endswith(".png")
    assert watched.unexpected_errors("status of 400", "status of 422") == []


async def test_find_a_customer_and_open_their_page(browser, console):
    watched = await open_page(browser, console)
    page = watched.page
    await sign_in(watched, "hq", "/console/customers")
    await expect(page.locator("[data-test=customers]")).to_contain_text("京客户")
    await shot(page, "customers")
    await page.fill("input[name=lookup]", "wmShanghai")
    await page.press("input[name=lookup]", "Enter")
    await expect(page.locator("[data-test=customer-name]")).to_have_text("沪客户")
    await expect(page).to_have_url(re.compile(r"/console/customers/wmShanghai$"))
    await shot(page, "customer")
    assert watched.unexpected_errors() == []


async def test_a_store_manager_cannot_see_another_stores_customers(browser, console):
    watched = await open_page(browser, console, PHONE)
    page = watched.page
    await sign_in(watched, "sh", "/console/customers")
    table = page.locator("[data-test=customers]")
    await expect(table).to_contain_text("沪客户")
    assert "京客户" not in await table.inner_text()
    await shot(page, "phone-store-manager-customers")
    await page.goto(watched.url("/console/customers/wmBeijing"))
    await expect(page.get_by_text("没有这位客户，或不在您的门店范围内")).to_be_visible()
    # The menu (behind the phone's menu button) has no 运维 for a store manager.
    await page.click("button[aria-label=菜单]")
    await expect(page.locator(".el-drawer")).to_contain_text("数据看板")
    assert "运维" not in await page.locator(".el-drawer").inner_text()
    await shot(page, "phone-menu")
    assert watched.unexpected_errors("status of 404") == []


async def test_a_write_without_the_csrf_token_is_refused_in_the_browser(browser, console):
    watched = await open_page(browser, console)
    page = watched.page
    await sign_in(watched, "hq")
    status, code = await page.evaluate("""async () => {
        const answer = await fetch('/api/v1/stores', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                   body: JSON.stringify({code: 'EVIL', name: 'evil'})})
        return [answer.status, (await answer.json()).error.code]
    }""")
    assert (status, code) == (403, "csrf_failed")
    stores = await page.evaluate("fetch('/api/v1/stores').then(r => r.json())")
    assert "EVIL" not in [s["code"] for s in stores["stores"]]


async def test_an_expired_session_signs_in_again_and_comes_back(browser, console):
    watched = await open_page(browser, console)
    page = watched.page
    await sign_in(watched, "hq", "/console/customers")
    await expect(page.locator("[data-test=customers]")).to_contain_text("沪客户")
    async with console.app[SERVICES].db.session() as session, session.begin():
        await session.execute(update(ConsoleSession).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    await choose(page, "[data-test=filter-store]", "上海人民广场店")  # the next API call finds the session ended
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?next=.*customers.*&expired=1"))
    await expect(page.get_by_role("alert")).to_contain_text("登录已过期")
    await page.fill("input[name=username]", "hq")
    await page.fill("input[name=password]", PASSWORD)
    await page.press("input[name=password]", "Enter")
    await expect(page).to_have_url(re.compile(r"/console/customers\?store_code=SH001$"))


@pytest.mark.parametrize(("device", "prefix"), [(DESKTOP, "desktop"), (PHONE, "phone")])
async def test_every_page_renders_without_console_errors(browser, console, device, prefix):
    await seed_activity(console.app[SERVICES].db)
    await seed_sop(console)
    await seed_new_friends(console, 3)  # added after the SOP began: its dry run has them to draw
    watched = await open_page(browser, console, device)
    page = watched.page
    await sign_in(watched, "hq")
    for path, name, heading in [
        ("/", "dashboard", "导购 PK 榜"), ("/stores", "stores", "门店"), ("/channels", "channels", "聚合码"),
        ("/customers", "customers", "沪客户"), ("/customers/wmBeijing", "customer", "绑定历史"),
        ("/members", "members", "券模板"), ("/campaigns", "campaigns", "群发活动"), ("/sop", "sop", "SOP"),
        ("/ops", "ops", "失败任务"),
    ]:
        await page.goto(watched.url("/console" + path))
        await expect(page.locator("main")).to_contain_text(heading)
        if name == "sop":  # three new friends, two steps each, both within the 14 days
            await expect(page.locator("[data-test=dry-run]")).to_contain_text("共 6 人次")
        await shot(page, f"{prefix}-{name}")
        await assert_fits(page, device)
    assert watched.unexpected_errors() == []


WELCOME_SOP = {"code": "welcome", "name": "新好友欢迎", "trigger": {"event": "friend_added"}, "exit_on": ["purchased"],
               "steps": [{"key": "d1", "after": {"days": 1}, "at": "10:00", "content": {"text": "我是{store_name}的{guide_name}"}},
                         {"key": "d3", "after": {"days": 3}, "at": "19:30", "reach": "guide_task",
                          "content": {"text": "{customer_name}您好，新人券还有4天到期"}}]}


async def seed_sop(console) -> None:
    from bot.api.auth import Role, create_token

    token = await create_token(console.app[SERVICES].db, Role.HQ_ADMIN)
    answer = await console.post("/api/v1/sops", json=WELCOME_SOP, headers={"Authorization": f"Bearer {token}"})
    assert answer.status == 201, await answer.text()


async def seed_new_friends(console, count: int) -> None:
    from bot.customers.models import Customer
    from bot.storage import utcnow

    async with console.app[SERVICES].db.session() as session, session.begin():
        session.add_all(Customer(external_userid=f"wmNew{i}", name=f"新客{i}", store_code="SH001", guide_userid="ann",
                                 status="bound", tags=[], bound_at=utcnow()) for i in range(count))


async def test_an_sop_is_written_in_the_editor_paused_and_resumed(browser, console):
    watched = await open_page(browser, console)
    page = watched.page
    await sign_in(watched, "hq", "/console/sop")
    await page.click("[data-test=new-sop]")
    await page.fill(".el-dialog input[name=code]", "welcome")
    await page.fill(".el-dialog input[name=name]", "新好友欢迎")
    # A per-customer placeholder in a group send: the API's 422 is shown at the step's content.
    await page.fill("[data-test=step-0] textarea[name=step_text]", "{customer_name}您好")
    await page.click("[data-test=save-sop]")
    await expect(page.locator("[data-test=step-0] .el-form-item__error")).to_contain_text("{customer_name} 因客户而异")
    await shot(page, "sop-editor-field-error")
    await page.fill("[data-test=step-0] textarea[name=step_text]", "我是{store_name}的{guide_name}，欢迎常来")
    await page.click("[data-test=add-step]")
    await page.fill("[data-test=step-1] textarea[name=step_text]", "新人券还有4天到期")
    await page.click("[data-test=save-sop]")
    sops = page.locator("[data-test=sops]")
    await expect(sops).to_contain_text("新好友欢迎")
    await expect(sops).to_contain_text("第 1 版")
    await expect(sops.locator("[data-test=sop-status]")).to_have_text("运行中")
    await expect(page.locator("[data-test=dry-run] canvas")).to_have_count(1)
    await expect(page.locator("[data-test=steps-overview]")).to_contain_text("d2 · 第 2 天 10:00")
    await page.click("[data-test=pause-welcome]")
    await expect(sops.locator("[data-test=sop-status]")).to_have_text("已暂停")
    await page.click("[data-test=resume-welcome]")
    await expect(sops.locator("[data-test=sop-status]")).to_have_text("运行中")
    await shot(page, "sop")
    async with console.app[SERVICES].db.session() as session:
        from sop.engine.models import SopVersion

        versions = (await session.scalars(select(SopVersion).where(SopVersion.code == "welcome"))).all()
    assert [v.document["steps"][1]["key"] for v in versions] == ["d2"]
    assert watched.unexpected_errors("status of 422") == []


async def test_the_sign_in_page_loads_little_javascript_and_no_charts(browser, console):
    import gzip

    watched = await open_page(browser, console)
    scripts: list = []
    watched.page.on("response", lambda r: r.request.resource_type == "script" and scripts.append(r))
    await watched.page.goto(watched.url("/console/sign-in"))
    await watched.page.wait_for_load_state("networkidle")
    sizes = {r.url.rsplit("/", 1)[-1]: len(gzip.compress(await r.body())) for r in scripts}
    assert sum(sizes.values()) < 500 * 1024, sizes
    assert not any("EChart" in name or "Dashboard" in name for name in sizes), sizes


async def test_a_dead_job_is_retried_from_the_ops_page(browser, console):
    import time

    from sqlalchemy import select

    from bot.storage.models import Job

    async with console.app[SERVICES].db.session() as session, session.begin():
        job = Job(kind="wecom.send_welcome", payload={"external_userid": "wmShanghai"}, status="dead", attempts=6,
                  max_attempts=6, run_at=time.time(), last_error="errcode 45033: api concurrent out of limit")
        session.add(job)
    watched = await open_page(browser, console)
    page = watched.page
    await sign_in(watched, "hq", "/console/ops")
    dead = page.locator("[data-test=dead-jobs]")
    await expect(dead).to_contain_text("api concurrent out of limit")
    await expect(page.locator("[data-test=health]")).to_contain_text("正常")
    await shot(page, "ops-dead-job")
    await dead.get_by_role("button", name="重试").click()
    await expect(dead).to_contain_text("没有失败任务")
    async with console.app[SERVICES].db.session() as session:
        assert await session.scalar(select(Job.status).where(Job.id == job.id)) == "queued"
    assert watched.unexpected_errors() == []


async def test_a_csv_import_shows_the_bad_lines_in_the_page_and_imports_nothing(browser, console):
    header = "code,name,city,address,lat,lng,coord_system,status,opening_hours\n"
    watched = await open_page(browser, console)
    page = watched.page
    await sign_in(watched, "hq", "/console/stores")
    await page.get_by_role("tab", name="CSV 导入").click()
    bad = header + "GZ001,广州店,广州,,,,gcj02,open,\n,无编码,广州,,,,gcj02,open,\nGZ003,坐标,广州,,91,120,gcj02,open,\n"
    await page.set_input_files("[data-test=import-file]", files=[
        {"name": "stores.csv", "mimeType": "text/csv", "buffer": bad.encode()}])
    await page.click("[data-test=run-import]")
    report = page.locator("[data-test=import-report]")
    await expect(report).to_contain_text("3")
    assert [line.strip() for line in await report.locator("tbody tr td:first-child").all_inner_texts()] == ["3", "4"]
    await expect(page.get_by_text("3 行中有 2 行有误，整份文件未导入")).to_be_visible()
    await shot(page, "stores-import-report")
    good = header + "GZ001,广州店,广州,,,,gcj02,open,mon-fri 10:00-22:00\n"
    await page.set_input_files("[data-test=import-file]", files=[
        {"name": "stores.csv", "mimeType": "text/csv", "buffer": good.encode()}])
    await page.click("[data-test=run-import]")
    await expect(page.get_by_text("导入成功：共 1 行，新建 1，更新 0")).to_be_visible()
    await page.get_by_role("tab", name="门店").click()
    await expect(page.locator("[data-test=stores]")).to_contain_text("广州店")
    assert watched.unexpected_errors("status of 422") == []


async def test_coupon_template_and_an_audited_points_adjustment(browser, console):
    from bot.api.auth import Role, create_token

    token = await create_token(console.app[SERVICES].db, Role.HQ_ADMIN)
    answer = await console.post("/api/v1/members", json={"external_userid": "wmShanghai", "phone": "13800138000", "name": "沪客户"},
                                headers={"Authorization": f"Bearer {token}"})
    assert answer.status == 201, await answer.text()
    watched = await open_page(browser, console)
    page = watched.page
    await sign_in(watched, "hq", "/console/members")

    await page.click("[data-test=new-template]")
    await page.fill(".el-dialog input[name=code]", "CARE20")
    await page.fill(".el-dialog input[name=name]", "关怀券")
    await page.fill(".el-dialog input[name=value_yuan]", "0")
    await page.click("[data-test=save-template]")
    await expect(page.locator("[data-test=template-problem]")).to_contain_text("value_fen > 0")
    await page.fill(".el-dialog input[name=value_yuan]", "20")
    await page.press(".el-dialog input[name=value_yuan]", "Tab")
    await page.click("[data-test=save-template]")
    await expect(page.locator("[data-test=templates]")).to_contain_text("关怀券")

    await page.get_by_role("tab", name="会员积分").click()
    await page.fill("input[name=member_query]", "13800138000")
    await page.press("input[name=member_query]", "Enter")
    form = page.locator("[data-test=adjust-form]")
    await form.locator("input[name=points]").fill("50")
    await form.locator("input[name=points]").press("Tab")
    await page.click("[data-test=adjust]")
    await expect(form.locator(".el-form-item__error")).to_contain_text("至少 1 个字符")  # the reason is required
    await form.locator("input[name=reason]").fill("门店活动补偿")
    await page.click("[data-test=adjust]")
    await expect(page.locator("[data-test=ledger]")).to_contain_text("门店活动补偿")
    await shot(page, "members-ledger")
    assert watched.unexpected_errors("status of 400", "status of 422") == []
