"""Profiles and tags of a burst of new customers: batch/get_by_user calls, not one get each."""

from __future__ import annotations

from sqlalchemy import select

from bot.customers.models import Customer, CustomerBinding
from tests.conftest import until


async def named_customers(world) -> dict[str, str]:
    async with world.services.db.session() as session:
        return {c.external_userid: c.name for c in await session.scalars(select(Customer)) if c.name}


async def test_a_burst_of_adds_is_enriched_by_one_batch_call(world, guide):
    world.emulator.add_member("guide2", "李导购")
    for external_userid, userid in [("wmA", guide), ("wmB", guide), ("wmC", "guide2")]:
        await world.driver.customer_adds_guide(external_userid, userid, name=f"客户{external_userid}")

    async def all_named():
        named = await named_customers(world)
        return named if len(named) == 3 else None

    assert await until(all_named) == {"wmA": "客户wmA", "wmB": "客户wmB", "wmC": "客户wmC"}
    # One call for the burst (two if the adds straddled a one-second window), none per customer.
    batches = world.emulator.calls_to("externalcontact/batch/get_by_user")
    assert 1 <= len(batches) <= 2 and set(batches[0]["body"]["userid_list"]) <= {"guide1", "guide2"}
    assert world.emulator.calls_to("externalcontact/get") == []
    async with world.services.db.session() as session:
        assert None not in set(await session.scalars(select(CustomerBinding.enriched_at)))


async def test_a_customer_missing_from_the_pages_is_fetched_alone(world, guide):
    await world.driver.customer_adds_guide("wmGone", guide, name="走了")
    del world.emulator.customers["wmGone"].follows[guide]  # not among the guide's customers any more

    async def enriched():
        async with world.services.db.session() as session:
            return await session.scalar(select(CustomerBinding.enriched_at))

    await until(enriched)
    assert [c["query"] for c in world.emulator.calls_to("externalcontact/get")] == [{"external_userid": "wmGone"}]


async def test_a_sweep_finding_another_running_leaves_the_work_to_it_at_once(world, guide):
    from bot.customers.enrich import ENRICH_SWEEP_KEY, enrich_customers
    from bot.jobs import JobContext

    await world.services.kv.set(ENRICH_SWEEP_KEY, "another job", ttl=60)
    await world.driver.customer_adds_guide("wmWaiting", guide, name="等一下")
    await world.settle()
    await enrich_customers(JobContext(world.services, job_id=1, kind="customers.enrich", attempt=1), {})
    assert world.emulator.calls_to("externalcontact/batch/get_by_user") == []  # nothing done, nothing waited
    await world.services.kv.delete(ENRICH_SWEEP_KEY)  # the other sweep ends: the next job does it
    await enrich_customers(JobContext(world.services, job_id=2, kind="customers.enrich", attempt=1), {})
    assert (await named_customers(world)) == {"wmWaiting": "等一下"}
