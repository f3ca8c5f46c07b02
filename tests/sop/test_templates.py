"""Templates through the API: the issue's document accepted, edits become versions for new
enrolments only, pause/resume, and each kind of bad template refused naming the field, with
nothing saved."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from sqlalchemy import func, select

from sop.engine.models import SopEnrolment, SopTemplate, SopVersion
from tests.sop.conftest import ONBOARDING, local, onboarding


def with_step(index: int, **changes) -> dict:
    document = copy.deepcopy(ONBOARDING)
    document["steps"][index].update(changes)
    return document


BAD = [
    (onboarding(trigger={"event": "friend_deleted"}), "trigger.event"),
    (with_step(0, content={"text": "您好{nickname}"}), "steps[0].content.text"),
    (with_step(0, content={"text": "{customer_name}您好"}), "steps[0].content.text"),  # per customer in a group send
    (with_step(1, content={"text": "{points} 积分"}), "steps[1].content.text"),  # guide_push is a group send too
    (with_step(2, content=None), "steps[2].content"),
    (with_step(1, content={"text": ""}), "steps[1].content"),
    (with_step(2, after={"days": 2}), "steps[2].after"),  # d6 before d3
    (with_step(2, benefit={"coupon_template_code": "NOPE"}), "steps[2].benefit.coupon_template_code"),
    (onboarding(audience={"channels": ["pkg"], "vip_level": 3}), "audience.vip_level"),
    (with_step(1, when={"stages": ["sleeping"]}), "steps[1].when.stages[0]"),
    (onboarding(trigger={"event": "coupon_expiring"}), "trigger"),
    (with_step(0, overrides={"SH01": {"text": "{coupon_name}"}}), "steps[0].overrides.SH01.text"),
]


@pytest.mark.parametrize(("document", "field"), BAD, ids=[field for _, field in BAD])
async def test_a_bad_template_is_refused_naming_the_field_and_nothing_is_saved(sw, document, field):
    answer = await sw.api("POST", "/api/v1/sops", 422, json=document)
    assert answer["error"]["details"][0]["field"] == field, answer
    async with sw.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(SopTemplate)) == 0
        assert await session.scalar(select(func.count()).select_from(SopVersion)) == 0


async def test_an_edit_is_a_new_version_that_only_new_enrolments_get(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=ONBOARDING)
    await sw.api("POST", "/api/v1/sops", 409, json=ONBOARDING)
    await sw.bind("wmA1", "ann")
    await sw.tick(dt.datetime.now(dt.UTC))
    edited = copy.deepcopy(ONBOARDING)
    edited["steps"][0]["content"] = {"text": "{guide_name}的新欢迎语"}
    answer = await sw.api("PUT", "/api/v1/sops/onboarding", 200, json=edited)
    assert (answer["version"], answer["versions"]) == (2, 2)
    assert (await sw.api("PUT", "/api/v1/sops/onboarding", 200, json=edited))["version"] == 2  # unchanged: no version
    bad = copy.deepcopy(edited)
    bad["steps"][0]["content"] = {"text": "{oops}"}
    await sw.api("PUT", "/api/v1/sops/onboarding", 422, json=bad)
    assert (await sw.api("GET", "/api/v1/sops/onboarding", 200))["version"] == 2
    await sw.bind("wmA2", "ann")
    await sw.tick(dt.datetime.now(dt.UTC))
    async with sw.services.db.session() as session:
        versions = dict((await session.execute(select(SopEnrolment.external_userid, SopEnrolment.version))).all())
    assert versions == {"wmA1": 1, "wmA2": 2}
    await sw.tick(local(1, "10:00"))
    texts = sorted((send.text["content"], sorted(send.tasks["ann"].results)) for send in sw.group_sends())
    assert texts == [("安娜的新欢迎语", ["wmA2"]), ("我是上海一店的安娜，有任何穿搭问题随时找我～", ["wmA1"])]


async def test_a_paused_sop_never_sends_and_resumed_skips_what_it_missed(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=ONBOARDING)
    await sw.bind("wmA1", "ann")
    await sw.tick(dt.datetime.now(dt.UTC))
    assert (await sw.api("POST", "/api/v1/sops/onboarding/pause", 200))["status"] == "paused"
    await sw.tick(local(1, "10:00"))
    await sw.tick(local(3, "19:30"))
    assert sw.group_sends() == [] and await sw.items() == []
    await sw.api("POST", "/api/v1/sops/onboarding/resume", 200)
    await sw.tick(local(3, "19:31"))
    runs = await sw.runs()
    assert runs[("wmA1", "d1")][0] == "skipped" and runs[("wmA1", "d1")][1].startswith("missed_window")
    assert runs[("wmA1", "d3")][0] == "queued"  # still inside its window: runs
    assert sw.group_sends() == []


async def test_guides_and_store_managers_cannot_write_templates(sw):
    answer = await sw.api("POST", "/api/v1/sops", 403, as_="sh_manager", json=ONBOARDING)
    assert answer["error"]["code"] == "forbidden"


async def test_saving_a_template_starts_the_per_minute_tick_once(sw):
    from bot.jobs import JobContext
    from bot.storage.models import Job
    from sop.engine.config import SopConfig
    from sop.engine.tick import TICK_JOB, tick_job

    sw.services.use_config(SopConfig(_env_file=None, tick_enabled=True))
    await sw.api("POST", "/api/v1/sops", 201, json=ONBOARDING)
    await sw.api("PUT", "/api/v1/sops/onboarding", 200, json=onboarding(name="新好友培育"))
    await tick_job(JobContext(sw.services, 0, TICK_JOB, 1), {})
    async with sw.services.db.session() as session:
        ticks = (await session.scalars(select(Job).where(Job.kind == TICK_JOB))).all()
    assert len(ticks) == 1  # one per minute, whoever asks
    assert ticks[0].run_at % 60 == 0 and ticks[0].run_at - dt.datetime.now(dt.UTC).timestamp() <= 60


async def test_per_store_content_overrides_the_step_text(sw):
    document = with_step(0, overrides={"BJ01": {"text": "北京店{guide_name}：欢迎！"}})
    await sw.api("POST", "/api/v1/sops", 201, json=document)
    await sw.bind("wmA1", "ann")
    await sw.bind("wmC1", "cai")
    await sw.tick(dt.datetime.now(dt.UTC))
    await sw.tick(local(1, "10:00"))
    texts = {send.creator: send.text["content"] for send in sw.group_sends()}
    assert texts == {"ann": "我是上海一店的安娜，有任何穿搭问题随时找我～", "cai": "北京店蔡晨：欢迎！"}
