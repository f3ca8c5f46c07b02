"""HQ campaign at scale: launch → every group-send task created, peak memory, and the audience
preview with a tag and a stage filter, on PostgreSQL against the emulator (its rate limit off).

    .venv/bin/python bench/campaign_fanout.py [--customers 1000000] [--guides 10000] [--coupon]

Three processes: a seeder (COPY into a fresh database, then exits), the emulator (its world holds
every customer and their guide, so add_msg_template checks friendships as WeCom does) and this
one, the service with its job runner: its peak RSS is the figure reported. The client's own rate
limiter is raised to match "rate limit off". Customer i belongs to guide i mod G; 10 guides a store.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
GUIDES_PER_STORE = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def guide_of(i: int, guides: int) -> str:
    return f"g{i % guides:05d}"


def customer_id(i: int) -> str:
    return f"wm{i:08d}"


# Seeder process

def seed(database_url: str, customers: int, guides: int) -> None:
    import asyncpg

    from bot.storage.migrate import upgrade

    upgrade(database_url.replace("postgresql://", "postgresql+asyncpg://"))
    now = dt.datetime.now(dt.UTC)

    async def copy() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            stores = (guides + GUIDES_PER_STORE - 1) // GUIDES_PER_STORE
            await conn.copy_records_to_table("stores", columns=[
                "code", "name", "city", "address", "status", "created_at", "updated_at"], records=[
                (f"S{s:04d}", f"门店{s}", "上海", "", "open", now, now) for s in range(stores)])
            await conn.copy_records_to_table("guides", columns=[
                "userid", "name", "store_code", "status", "daily_add_limit", "is_backup", "created_at",
                "updated_at"], records=[
                (f"g{g:05d}", f"导购{g}", f"S{g // GUIDES_PER_STORE:04d}", "active", 100, False, now, now)
                for g in range(guides)])
            batch = 100_000
            for start in range(0, customers, batch):
                rows = range(start, min(customers, start + batch))
                await conn.copy_records_to_table("customers", columns=[
                    "external_userid", "name", "gender", "guide_userid", "store_code", "channel_code", "status",
                    "tags", "first_bound_at", "bound_at", "created_at", "updated_at"], records=[
                    (customer_id(i), f"客户{i}", i % 3, guide_of(i, guides),
                     f"S{(i % guides) // GUIDES_PER_STORE:04d}", "direct", "bound", "[]", now, now, now, now)
                    for i in rows])
                # 70 % are members; purchases spread them over the lifecycle stages.
                await conn.copy_records_to_table("members", columns=[
                    "member_no", "external_userid", "source", "name", "level", "status", "points_balance",
                    "purchase_count", "total_spent_fen", "last_purchase_at", "stage", "stage_changed_at",
                    "joined_at", "updated_at"], records=[
                    (f"M{i:010d}", customer_id(i), "binding", "", "normal", "active", i % 1000, i % 10,
                     (i % 10) * 10000, now - dt.timedelta(days=i % 400) if i % 10 else None, "member", now, now, now)
                    for i in rows if i % 10 < 7])
                await conn.copy_records_to_table("customer_tags", columns=[
                    "external_userid", "guide_userid", "tag_id", "tag_name", "synced_at"], records=[
                    (customer_id(i), guide_of(i, guides), tag_id, name, now) for i in rows
                    for tag_id, name, every in (("etVIP", "VIP", 3), ("etMOM", "孕妈", 5)) if i % every == 0])
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(copy())


# Emulator process

def serve_emulator(port: int, customers: int, guides: int) -> None:
    import logging

    from aiohttp import web

    from bot.emulator import EmulatorState
    from bot.emulator.app import create_emulator_app
    from bot.emulator.world import Customer, Follow

    logging.disable(logging.WARNING)
    state = EmulatorState(record_limit=1000)
    for g in range(guides):
        state.add_member(f"g{g:05d}", f"导购{g}")
    now = state.now()
    for i in range(customers):
        guide = guide_of(i, guides)
        state.customers[customer_id(i)] = Customer(customer_id(i), f"客户{i}", follows={guide: Follow(guide, now)})
    web.run_app(create_emulator_app(state), host="127.0.0.1", port=port, print=None, access_log=None)


def start(target, *args) -> multiprocessing.Process:
    process = multiprocessing.Process(target=target, args=args, daemon=True)
    process.start()
    return process


async def wait_for_port(port: int, within: float = 600) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.5)
    raise TimeoutError(f"nothing listens on {port}")


# The service (this process)

async def run(args, database_url: str, emulator_port: int) -> dict:
    import logging

    import aiohttp
    from aiohttp import web
    from sqlalchemy import func, select

    from bot.api.auth import Role, create_token
    from bot.app import create_app
    from bot.config import (
        EMULATOR_AES_KEY,
        EMULATOR_AGENT_ID,
        EMULATOR_CORP_ID,
        EMULATOR_SECRET,
        EMULATOR_TOKEN,
        Settings,
    )
    from bot.services import SERVICES
    from sop.outreach.models import OutreachPlan, OutreachSend

    logging.disable(logging.WARNING)
    settings = Settings(
        _env_file=None, database_url=database_url, redis_url=REDIS_URL, redis_key_prefix=f"bench-{uuid.uuid4().hex}:",
        wecom_corp_id=EMULATOR_CORP_ID, wecom_agent_id=EMULATOR_AGENT_ID, wecom_secret=EMULATOR_SECRET,
        wecom_token=EMULATOR_TOKEN, wecom_encoding_aes_key=EMULATOR_AES_KEY,
        wecom_api_base_url=f"http://127.0.0.1:{emulator_port}/cgi-bin/",
        wecom_api_calls_per_minute=10_000_000, job_concurrency=args.concurrency, job_poll_seconds=0.05)
    app = create_app(settings, run_jobs=True, migrate=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    services = app[SERVICES]
    token = await create_token(services.db, Role.HQ_ADMIN, name="bench")
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    figures: dict = {}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=3600)) as http:
        async def call(method: str, path: str, expect: int, body: dict | None = None) -> dict:
            async with http.request(method, base + path, json=body) as response:
                data = await response.json()
                assert response.status == expect, (response.status, data)
                return data

        if args.coupon:
            await call("POST", "/api/v1/coupon-templates", 201, {
                "code": "CARE20", "name": "关怀券", "kind": "cash", "value_fen": 2000, "valid_days": 30})
        audience = {"tags_any": ["VIP"], "stages": ["repeat", "loyal"]}
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            preview = await call("POST", "/api/v1/audiences/preview", 200, {"audience": audience})
            timings.append(time.perf_counter() - started)
        figures["preview_seconds"] = [round(t, 3) for t in timings]
        figures["preview_total"] = preview["total"]

        body = {"name": "闭店不停业关怀", "audience": {},
                "content": {"text": "您好，我是{guide_name}。门店暂停营业期间，线上商城照常为您服务。"}}
        if args.coupon:
            body["benefit"] = {"coupon_template_code": "CARE20"}
        campaign = await call("POST", "/api/v1/campaigns", 201, body)
        await call("POST", f"/api/v1/campaigns/{campaign['id']}/approve", 200, {})
        started = time.perf_counter()
        await call("POST", f"/api/v1/campaigns/{campaign['id']}/launch", 200, {})
        figures["launch_answer_seconds"] = round(time.perf_counter() - started, 3)
        source = f"campaign:{campaign['id']}"
        planned = None
        while True:
            await asyncio.sleep(0.5)
            async with services.db.session() as session:
                status = await session.scalar(select(OutreachPlan.status).where(OutreachPlan.source == source))
                if status and planned is None:
                    planned = time.perf_counter() - started
                open_sends = await session.scalar(select(func.count()).select_from(OutreachSend).where(
                    OutreachSend.source == source, OutreachSend.status.in_(("planned", "creating"))))
            if status and status != "sending" and open_sends == 0:
                break
        figures["planned_seconds"] = round(planned, 2)
        figures["all_tasks_created_seconds"] = round(time.perf_counter() - started, 2)
        async with services.db.session() as session:
            sends, msgids, failed = (await session.execute(select(
                func.count(), func.count(func.distinct(OutreachSend.msgid)),
                func.count().filter(OutreachSend.status != "created")).where(OutreachSend.source == source))).one()
        detail = await call("GET", f"/api/v1/campaigns/{campaign['id']}", 200)
        figures.update(tasks=sends, distinct_msgids=msgids, sends_not_created=failed,
                       targeted=detail["counts"]["targeted"], pending=detail["counts"]["pending"])
    await runner.cleanup()
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--guides", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16, help="jobs the runner runs at once")
    parser.add_argument("--coupon", action="store_true", help="issue a benefit coupon to every customer")
    args = parser.parse_args()

    import asyncpg

    name = f"bench_campaign_{os.getpid()}"
    base = PG_URL.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    database_url = f"{base}/{name}"
    emulator = None
    try:
        started = time.perf_counter()
        seeder = start(seed, database_url, args.customers, args.guides)
        emulator_port = free_port()
        emulator = start(serve_emulator, emulator_port, args.customers, args.guides)
        seeder.join()
        assert seeder.exitcode == 0, "seeding failed"
        asyncio.run(wait_for_port(emulator_port))
        print(f"seeded {args.customers:,} customers, {args.guides:,} guides in {time.perf_counter() - started:.0f} s",
              flush=True)
        figures = asyncio.run(run(args, database_url, emulator_port))
    finally:
        if emulator is not None:
            emulator.terminate()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"customers {args.customers:,} · guides {args.guides:,} · coupon {args.coupon} · "
          f"concurrency {args.concurrency}")
    print(f"preview (tag VIP + stages repeat/loyal): {figures['preview_total']:,} customers in "
          f"{figures['preview_seconds']} s (three runs), median {statistics.median(figures['preview_seconds'])} s")
    print(f"launch answered in {figures['launch_answer_seconds']} s; planned after {figures['planned_seconds']} s; "
          f"every task created after {figures['all_tasks_created_seconds']} s")
    print(f"tasks {figures['tasks']:,} (distinct msgids {figures['distinct_msgids']:,}, not created "
          f"{figures['sends_not_created']}), targeted {figures['targeted']:,}, pending {figures['pending']:,}")
    print(f"peak RSS of the service process: {figures['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
