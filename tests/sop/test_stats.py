"""Completion statistics: "confirmed" and "sent" come from WeCom's send results (synced), never
from the guide's client; an SOP with a holdout reports the holdout's conversions and the uplift
per step, by store or guide, as the campaigns do."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.customers.models import Customer
from bot.emulator.api_groupmsg import confirm_group_send
from sop.engine.outreach_adapter import held_out
from sop.outreach.sync import sync_outreach
from tests.sop.conftest import local, onboarding


async def test_sop_stats_report_holdout_conversions_and_uplift_per_step(sw):
    document = onboarding(holdout_percent=50)
    await sw.api("POST", "/api/v1/sops", 201, json=document)
    customers = [f"wmA{i}" for i in range(8)]
    for customer in customers:
        await sw.bind(customer, "ann")
    async with sw.services.db.session() as session:
        ids = dict((await session.execute(select(Customer.external_userid, Customer.id))).all())
    held = sorted(c for c in customers if held_out(ids[c], "sop:onboarding", 50))
    reached = sorted(set(customers) - set(held))
    assert held and reached
    await sw.tick(dt.datetime.now(dt.UTC))
    d1 = local(1, "10:00")
    await sw.tick(d1)
    before = await sw.api("GET", "/api/v1/stats/sop?code=onboarding&group_by=guide", 200)
    [row] = [r for r in before["steps"] if r["step"] == "d1"]
    assert (row["pushed"], row["confirmed"], row["sent"]) == (len(customers), 0, 0)  # nothing confirmed in WeCom yet

    [send] = sw.group_sends()
    confirm_group_send(sw.emulator, send.msgid)
    source = (await sw.items())[0].source
    await sync_outreach(sw.services, source)
    # One reached customer and one held-out customer buy within the attribution window.
    await sw.order("O-1", reached[0], d1 + dt.timedelta(days=1))
    await sw.order("O-2", held[0], d1 + dt.timedelta(days=2))
    await sw.order("O-3", held[-1], d1 + dt.timedelta(days=20))  # too late: not attributed
    stats = await sw.api("GET", "/api/v1/stats/sop?code=onboarding&group_by=guide", 200)
    assert stats["holdout"] is True
    [row] = [r for r in stats["steps"] if r["step"] == "d1"]
    assert (row["guide"], row["confirmed"], row["sent"], row["held_out"]) == ("ann", len(reached), len(reached), len(held))
    assert (row["conversions"], row["holdout_conversions"]) == (1, 1)
    rate, held_rate = round(1 / len(reached), 4), round(1 / len(held), 4)
    assert (row["conversion_rate"], row["holdout_conversion_rate"]) == (rate, held_rate)
    assert row["uplift"] == round(rate - held_rate, 4)


async def test_sop_stats_without_a_holdout_carry_no_uplift_fields(sw):
    await sw.api("POST", "/api/v1/sops", 201, json=onboarding())
    await sw.bind("wmA1", "ann")
    await sw.tick(dt.datetime.now(dt.UTC))
    await sw.tick(local(1, "10:00"))
    stats = await sw.api("GET", "/api/v1/stats/sop?code=onboarding&group_by=store", 200)
    assert stats["holdout"] is False
    assert "uplift" not in stats["steps"][0] and stats["steps"][0]["store"] == "SH01"
