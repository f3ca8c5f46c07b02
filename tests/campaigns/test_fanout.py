"""Fan-out durability and fairness: launching twice, a crash between WeCom and our commit, two
workers, chunks of one guide, held-out customers, fail_list, guides who left, one failing guide."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from bot.emulator.api_groupmsg import confirm_group_send
from sop.campaigns.launch import plan_campaign
from sop.outreach.fanout import send_job
from sop.outreach.models import OutreachRecipient, OutreachSend
from tests.campaigns.conftest import CAMPAIGN
from tests.conftest import until

ADD = "externalcontact/add_msg_template"


async def bind_many(cw, guide: str, count: int, prefix: str) -> list[str]:
    customers = [f"{prefix}{n}" for n in range(count)]
    for external_userid in customers:
        await cw.bind(external_userid, guide)
    await cw.settle()
    return customers


def recipients_of_tasks(cw) -> list[str]:
    return [customer for send in cw.tasks() for task in send.tasks.values() for customer in task.results]


async def sends(cw) -> list[OutreachSend]:
    async with cw.services.db.session() as session:
        return list((await session.scalars(select(OutreachSend).order_by(OutreachSend.id))).all())


async def recipient_rows(cw) -> dict[str, OutreachRecipient]:
    async with cw.services.db.session() as session:
        return {r.external_userid: r for r in (await session.scalars(select(OutreachRecipient))).all()}


async def test_launching_twice_at_once_creates_one_task_per_guide(cw):
    await bind_many(cw, "ann", 2, "wmA")
    await bind_many(cw, "bo", 1, "wmB")
    created = await cw.create()
    await cw.api("POST", f"/api/v1/campaigns/{created['id']}/approve", 200, json={})
    path = f"/api/v1/campaigns/{created['id']}/launch"
    answers = await asyncio.gather(*(cw.world.client.post(path, json={}, headers={
        "Authorization": f"Bearer {cw.tokens['hq']}"}) for _ in range(2)))
    assert sorted(a.status for a in answers) == [200, 409]
    await cw.settle()
    await cw.api("POST", path, 409, json={})
    await cw.settle()
    assert sorted(send.creator for send in cw.tasks()) == ["ann", "bo"]


async def test_a_crash_after_wecom_created_the_task_never_creates_a_second(cw, monkeypatch):
    await bind_many(cw, "ann", 3, "wmA")
    await bind_many(cw, "bo", 2, "wmB")
    contact = cw.services.wecom.externalcontact
    create, crashed = contact.add_msg_template, []

    async def create_then_die(**call):
        answer = await create(**call)
        if not crashed:  # the worker dies after WeCom made the task, before our commit
            crashed.append(answer["msgid"])
            raise ConnectionResetError("worker killed")
        return answer

    monkeypatch.setattr(contact, "add_msg_template", create_then_die)
    campaign_id = await cw.launch()

    async def all_created():
        return all(send.status == "created" for send in await sends(cw))

    await until(all_created, within=20)
    assert sorted(send.creator for send in cw.tasks()) == ["ann", "bo"]
    assert len(cw.emulator.calls_to(ADD)) == 2
    assert crashed[0] in {send.msgid for send in await sends(cw)}  # the lost task was found and adopted
    detail = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}", 200)
    assert detail["counts"]["pending"] == 5 and detail["counts"]["tasks"] == 2


async def test_two_workers_on_one_send_create_one_task(cw, monkeypatch):
    await bind_many(cw, "ann", 2, "wmA")
    contact = cw.services.wecom.externalcontact
    create = contact.add_msg_template

    async def slow_create(**call):
        await asyncio.sleep(1.0)  # longer than a second worker waits for the send
        return await create(**call)

    monkeypatch.setattr(contact, "add_msg_template", slow_create)
    cw.services.runner.stop()  # these two play the workers
    await asyncio.sleep(0.1)
    created = await cw.create()
    await cw.api("POST", f"/api/v1/campaigns/{created['id']}/approve", 200, json={})
    await cw.api("POST", f"/api/v1/campaigns/{created['id']}/launch", 200, json={})
    await plan_campaign(cw.services, created["id"])
    [send] = await sends(cw)

    class Job:
        services = cw.services

    outcomes = await asyncio.gather(send_job(Job, {"send_ids": [send.id]}), send_job(Job, {"send_ids": [send.id]}),
                                    return_exceptions=True)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["NoneType", "Retry"]  # one waits its turn
    await send_job(Job, {"send_ids": [send.id]})  # its retry finds the task made
    assert len(cw.emulator.calls_to(ADD)) == 1 and len(cw.tasks()) == 1


async def test_a_guide_with_more_customers_than_a_chunk_gets_a_task_per_chunk_all_synced(cw, outreach_settings):
    outreach_settings.chunk_size = 2
    customers = await bind_many(cw, "ann", 5, "wmA")
    campaign_id = await cw.launch()
    tasks = cw.tasks()
    assert len(tasks) == 3 and {t.creator for t in tasks} == {"ann"}
    assert sorted(recipients_of_tasks(cw)) == customers
    for task in tasks:
        confirm_group_send(cw.emulator, task.msgid)
    detail = await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/sync", 200, json={})
    assert detail["counts"]["sent"] == 5 and detail["counts"]["tasks"] == 3
    assert detail["status"] == "finished" and detail["counts"]["guides_confirmed"] == 1
    notices = [m for m in cw.emulator.outbox if m["channel"] == "app" and m.get("msgtype") == "template_card"]
    assert len(notices) == 1 and notices[0]["template_card"]["emphasis_content"]["title"] == "5"


async def test_held_out_customers_are_never_sent_and_give_the_uplift(cw):
    customers = await bind_many(cw, "ann", 12, "wmH")
    campaign_id = await cw.launch({**CAMPAIGN, "holdout_percent": 50})
    rows = await recipient_rows(cw)
    held = {c for c, r in rows.items() if r.status == "held_out"}
    assert 0 < len(held) < len(customers)
    assert not held & set(recipients_of_tasks(cw))
    assert all(rows[c].coupon_code is None for c in held)
    assert sorted(recipients_of_tasks(cw)) == sorted(set(customers) - held)

    for send in cw.tasks():
        confirm_group_send(cw.emulator, send.msgid)
    await cw.api("POST", f"/api/v1/campaigns/{campaign_id}/sync", 200, json={})
    paid_at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    buyer_sent = sorted(set(customers) - held)[0]
    buyer_held = sorted(held)[0]
    for number, buyer in enumerate((buyer_sent, buyer_held)):
        await cw.api("POST", "/api/v1/orders", 201, as_="till", json={
            "order_no": f"H-{number}", "external_userid": buyer, "channel": "online", "amount_fen": 100,
            "paid_at": paid_at})
    detail = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}", 200)
    conversions, counts = detail["conversions"], detail["counts"]
    assert counts["held_out"] == len(held) and counts["targeted"] == len(customers) - len(held)
    assert conversions["orders"] == 1  # the held-out customer's order is not the campaign's
    assert conversions["holdout_conversion_rate"] == round(1 / len(held), 4)
    assert conversions["uplift"] == round(round(1 / counts["sent"], 4) - round(1 / len(held), 4), 4)


async def test_one_failing_guide_does_not_stop_the_others_and_each_customer_says_why(cw):
    await bind_many(cw, "ann", 2, "wmA")
    await bind_many(cw, "bo", 1, "wmB")
    await cw.bind("wmLost", "cai")
    await cw.settle()
    await cw.api("PATCH", "/api/v1/guides/cai", 200, json={"status": "resigned"})
    cw.emulator.fail_next(40003, path=ADD)  # the first task asked for fails for good
    campaign_id = await cw.launch({**CAMPAIGN, "audience": {}})

    rows = await recipient_rows(cw)
    assert (rows["wmLost"].status, rows["wmLost"].reason) == ("skipped", "guide_left")
    statuses = {s.guide_userid: s.status for s in await sends(cw)}
    assert sorted(statuses.values()) == ["created", "failed"]
    failed_guide = next(g for g, s in statuses.items() if s == "failed")
    assert {(r.status, r.reason) for r in rows.values() if r.guide_userid == failed_guide} == {
        ("failed", "errcode_40003")}
    assert {r.status for c, r in rows.items() if c != "wmLost" and r.guide_userid != failed_guide} == {"pending"}
    detail = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}", 200)
    assert detail["counts"]["skipped"] == 1 and detail["counts"]["tasks"] == 1
    assert detail["status"] == "sent"


async def test_customers_of_a_guide_who_left_go_through_the_guide_who_also_has_them(cw):
    await cw.bind("wmBoth", "ann")
    await cw.bind("wmBoth", "bo")
    await cw.bind("wmOnly", "ann")
    await cw.settle()
    await cw.api("PATCH", "/api/v1/guides/ann", 200, json={"status": "resigned"})
    await cw.launch()
    rows = await recipient_rows(cw)
    assert (rows["wmBoth"].guide_userid, rows["wmBoth"].status) == ("bo", "pending")
    assert (rows["wmOnly"].status, rows["wmOnly"].reason) == ("skipped", "guide_left")
    assert [(s.creator, list(next(iter(s.tasks.values())).results)) for s in cw.tasks()] == [("bo", ["wmBoth"])]


async def test_a_customer_deleted_in_wecom_without_an_event_comes_back_in_fail_list(cw):
    await bind_many(cw, "ann", 2, "wmA")
    cw.emulator.customers["wmA1"].follows.pop("ann")
    campaign_id = await cw.launch()
    rows = await recipient_rows(cw)
    assert (rows["wmA1"].status, rows["wmA1"].reason) == ("failed", "fail_list")
    assert rows["wmA0"].status == "pending"
    detail = await cw.api("GET", f"/api/v1/campaigns/{campaign_id}", 200)
    assert (detail["counts"]["failed"], detail["counts"]["pending"]) == (1, 1)
