"""`serve` with no WeCom credentials runs against the built-in emulator and says so first."""

import logging

from bot.app import create_app
from bot.config import EMULATOR_AES_KEY, EMULATOR_CORP_ID, EMULATOR_TOKEN
from bot.services import SERVICES
from bot.wecom.crypto import CallbackCrypto


async def test_no_credentials_means_the_built_in_emulator(aiohttp_client, make_settings, caplog):
    caplog.set_level(logging.INFO)
    settings = make_settings(wecom_corp_id="", wecom_agent_id=0, wecom_secret="", wecom_token="",
                             wecom_encoding_aes_key="", emulator_port=0)
    client = await aiohttp_client(create_app(settings, run_jobs=False))
    services = client.app[SERVICES]

    assert "built-in WeCom emulator" in caplog.records[0].getMessage()
    assert services.emulator is not None
    assert services.wecom.base_url == services.emulator.api_base_url

    # URL verification answers with the emulator corp's token and key, like a real corp's.
    sealed = CallbackCrypto(EMULATOR_TOKEN, EMULATOR_AES_KEY, EMULATOR_CORP_ID).seal("8217340912")
    response = await client.get("/wecom/callback", params={**sealed["params"], "echostr": sealed["encrypted"]})
    assert response.status == 200 and await response.text() == "8217340912"

    services.emulator.state.add_member("zhangsan", "张三")
    answer = await services.wecom.message.send(touser="zhangsan", msgtype="text", text={"content": "hi"})
    assert answer["errcode"] == 0
    assert [m["to"] for m in services.emulator.state.outbox] == ["zhangsan"]


async def test_start_up_schedules_the_nightly_housekeeping_once(aiohttp_client, settings):
    from sqlalchemy import select

    from bot.storage.models import Job

    for _ in range(2):  # two processes starting
        client = await aiohttp_client(create_app(settings, run_jobs=False))
        async with client.app[SERVICES].db.session() as session:
            jobs = (await session.scalars(select(Job).where(Job.kind == "members.housekeeping"))).all()
        assert len(jobs) == 1 and jobs[0].run_at > __import__("time").time()
        await client.close()
