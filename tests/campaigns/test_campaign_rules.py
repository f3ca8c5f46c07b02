"""Campaign life cycle and refusals: every bad input of the issue is a 4xx naming the field, with
nothing created and nothing sent; roles and store-manager scoping."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from sqlalchemy import func, select

from sop.campaigns.models import Campaign
from tests.campaigns.conftest import CAMPAIGN


def campaign(**changes) -> dict:
    body = copy.deepcopy(CAMPAIGN)
    for path, value in changes.items():
        target, *keys = path.split("__")
        if keys:
            body[target][keys[0]] = value
        else:
            body[target] = value
    return body


async def campaigns_in_db(cw) -> int:
    async with cw.services.db.session() as session:
        return await session.scalar(select(func.count()).select_from(Campaign))


def fields(answer: dict) -> list[str]:
    return [detail["field"] for detail in answer["error"]["details"]]


PAST = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()


# 400: the body breaks the published schema; 422: a rule the schema cannot state (bytes, the clock,
# placeholders, between fields).
@pytest.mark.parametrize(("body", "field", "status"), [
    (campaign(content={"text": "好" * 1334}), "content.text", 422),  # 4,002 bytes of UTF-8
    (campaign(content={"text": "hi", "attachments": [{"msgtype": "image", "image": {"media_id": "m"}}] * 10}),
     "content.attachments", 400),
    (campaign(content={"text": "hi", "attachments": [{"msgtype": "voice"}]}), "content.attachments.0.msgtype", 400),
    (campaign(content={"text": "hi", "attachments": [{"msgtype": "link"}]}), "content.attachments.0", 422),
    (campaign(send_at=PAST), "send_at", 422),
    (campaign(content={"text": "{customer_name}您好，送您一张券"}), "content.text", 422),
    (campaign(audience={"stores": ["SH01"], "store": ["SH01"]}), "audience.store", 400),
    (campaign(audience={"points_min": 10, "points_max": 1}), "audience", 422),
    (campaign(holdout_percent=60), "holdout_percent", 400),
    (campaign(name=""), "name", 400),
    (campaign(content={"text": ""}), "content", 422),
])
async def test_bad_input_is_refused_naming_the_field(cw, body, field, status):
    answer = await cw.api("POST", "/api/v1/campaigns", status, json=body)
    assert field in fields(answer), answer
    assert await campaigns_in_db(cw) == 0


async def test_a_per_customer_placeholder_is_refused_saying_why(cw):
    answer = await cw.api("POST", "/api/v1/campaigns", 422, json=campaign(content={"text": "{name}您好"}))
    problem = answer["error"]["details"][0]["problem"]
    assert "{name}" in problem and "one text for all its recipients" in problem and "{guide_name}" in problem


async def test_an_unknown_coupon_template_is_refused(cw):
    answer = await cw.api("POST", "/api/v1/campaigns", 422, json=campaign(benefit={"coupon_template_code": "NOPE"}))
    assert fields(answer) == ["benefit.coupon_template_code"]
    assert await campaigns_in_db(cw) == 0


async def test_roles_and_store_manager_scoping(cw):
    await cw.bind("wmS1", "ann")
    await cw.bind("wmS2", "cai")
    await cw.settle()
    answer = await cw.api("POST", "/api/v1/campaigns", 403, as_="guide", json=CAMPAIGN)
    assert answer["error"]["code"] == "forbidden"
    answer = await cw.api("POST", "/api/v1/campaigns", 403, as_="sh_manager",
                          json=campaign(audience={"stores": ["SH01", "BJ01"]}))
    assert fields(answer) == ["audience.stores"] and "BJ01" in answer["error"]["message"]
    answer = await cw.api("POST", "/api/v1/campaigns", 403, as_="sh_manager", json=campaign(audience={}))
    assert fields(answer) == ["audience.stores"]
    await cw.api("POST", "/api/v1/audiences/preview", 403, as_="sh_manager", json={"audience": {"stores": ["BJ01"]}})
    assert await campaigns_in_db(cw) == 0

    own = await cw.create(as_="sh_manager")
    hq = await cw.create(campaign(audience={"stores": ["BJ01"]}))
    listed = await cw.api("GET", "/api/v1/campaigns", 200, as_="sh_manager")
    assert [c["id"] for c in listed["campaigns"]] == [own["id"]]
    await cw.api("GET", f"/api/v1/campaigns/{hq['id']}", 404, as_="sh_manager")
    await cw.api("POST", f"/api/v1/campaigns/{hq['id']}/cancel", 404, as_="sh_manager", json={})
    # Only HQ approves; the manager then launches their own campaign.
    await cw.api("POST", f"/api/v1/campaigns/{own['id']}/approve", 403, as_="sh_manager", json={})
    await cw.api("POST", f"/api/v1/campaigns/{own['id']}/approve", 200, json={})
    await cw.api("POST", f"/api/v1/campaigns/{own['id']}/launch", 200, as_="sh_manager", json={})
    await cw.settle()
    assert [task.creator for task in cw.tasks()] == ["ann"]
    both = await cw.api("GET", "/api/v1/campaigns", 200)
    assert sorted(c["id"] for c in both["campaigns"]) == sorted([own["id"], hq["id"]])


async def test_launch_needs_approval_and_an_audience_with_someone_to_send_to(cw):
    await cw.bind("wmL1", "ann")
    await cw.settle()
    draft = await cw.create()
    answer = await cw.api("POST", f"/api/v1/campaigns/{draft['id']}/launch", 409, json={})
    assert fields(answer) == ["status"] and "not approved" in answer["error"]["message"]

    nobody = await cw.create(campaign(audience={"stores": ["BJ01"]}))
    await cw.api("POST", f"/api/v1/campaigns/{nobody['id']}/approve", 200, json={})
    answer = await cw.api("POST", f"/api/v1/campaigns/{nobody['id']}/launch", 422, json={})
    assert fields(answer) == ["audience"]
    detail = await cw.api("GET", f"/api/v1/campaigns/{nobody['id']}", 200)
    assert detail["status"] == "approved"
    await cw.settle()
    assert cw.tasks() == [] and cw.emulator.calls_to("externalcontact/add_msg_template") == []


async def test_actions_take_an_empty_json_object(cw):
    created = await cw.create()
    answer = await cw.api("POST", f"/api/v1/campaigns/{created['id']}/approve", 400, json={"force": True})
    assert fields(answer) == ["force"]
    await cw.api("POST", f"/api/v1/campaigns/{created['id']}/approve", 200, json={})
    await cw.api("POST", f"/api/v1/campaigns/{created['id']}/approve", 409, json={})
    await cw.api("POST", "/api/v1/campaigns/999/approve", 404, json={})
