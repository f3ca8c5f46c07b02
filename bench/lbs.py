"""LBS codes under load: `locate` over 10,000 stores, and a burst of add events to welcomes.

    .venv/bin/python bench/lbs.py locate [--backend sqlite|postgres] [--stores 10000] [--queries 5000]
    .venv/bin/python bench/lbs.py burst  [--backend sqlite|postgres] [--rate 500] [--seconds 10] [--no-benefit]

locate: in-process, after a warm-up pass that creates the guides' contact ways in the emulator;
times the store lookup alone (directory.nearest) and the whole `locate()` (store, guide rule with
today's adds, contact way, funnel row). burst: the service runs in its own process (callback
intake + embedded job runner); this process hosts the emulator and posts encrypted
add_external_contact callbacks at a fixed rate (open loop, like WeCom). For each add it measures
the time from posting the callback to the welcome message reaching the emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import shlex
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from lbs_locate import random_point  # noqa: E402  (same city-clustered stores and customers)

from bot.config import (  # noqa: E402
    EMULATOR_AES_KEY,
    EMULATOR_AGENT_ID,
    EMULATOR_CORP_ID,
    EMULATOR_SECRET,
    EMULATOR_TOKEN,
    Settings,
)

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/bench_lbs")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"p50 {pick(0.5):8.2f}  p99 {pick(0.99):8.2f}  max {ordered[-1]:8.2f}"


def settings_for(args, api_base_url: str, **extra) -> Settings:
    return Settings(
        _env_file=None, database_url=args.database_url, redis_url=args.redis_url,
        wecom_corp_id=EMULATOR_CORP_ID, wecom_agent_id=EMULATOR_AGENT_ID, wecom_secret=EMULATOR_SECRET,
        wecom_token=EMULATOR_TOKEN, wecom_encoding_aes_key=EMULATOR_AES_KEY, wecom_api_base_url=api_base_url,
        wecom_api_calls_per_minute=10_000, **extra,  # WeCom's documented per-API limit
    )


async def fresh_database(args) -> None:
    """An empty, migrated database (PostgreSQL: its own bench database, dropped and re-made)."""
    from sqlalchemy import text

    from bot.storage import Database
    from bot.storage.migrate import upgrade

    if args.backend == "postgres":
        import asyncpg

        admin = await asyncpg.connect(PG_URL.rsplit("/", 1)[0].replace("+asyncpg", "") + "/postgres")
        name = PG_URL.rsplit("/", 1)[1]
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        import redis.asyncio as aioredis

        client = aioredis.from_url(args.redis_url)
        await client.flushdb()
        await client.aclose()
    await asyncio.to_thread(upgrade, args.database_url)
    db = Database(args.database_url)
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await db.dispose()


async def seed(db, stores: int, guides_per_store: int, rng: random.Random) -> list[str]:
    """Stores around big cities, their guides, one channel and one code; returns the guide userids."""
    from bot.stores.models import Channel, Guide, QrCode, Store

    userids = []
    async with db.session() as session, session.begin():
        for i in range(stores):
            lat, lng = random_point(rng, spread_share=0.15)
            session.add(Store(code=f"S{i:05d}", name=f"门店{i}", city="城市", address="", lat=lat, lng=lng,
                              status="open" if rng.random() < 0.9 else "closed"))
        await session.flush()
        for i in range(stores):
            for j in range(guides_per_store):
                userids.append(f"g{i:05d}{j}")
                session.add(Guide(userid=userids[-1], name=userids[-1], store_code=f"S{i:05d}",
                                  daily_add_limit=10_000))
        session.add(Channel(code="poster", name="海报", tag_names=["海报", "新客"], welcome_text="欢迎！"))
        await session.flush()
        session.add(QrCode(code="bench", channel_code="poster", radius_m=5000))
    return userids


async def bench_locate(args) -> None:
    from bot.emulator import EmulatorState, start_emulator
    from bot.services import open_services
    from bot.storage import Database, utcnow
    from bot.stores.directory import directory_for
    from bot.stores.locate import active_code, locate
    from bot.stores.models import ContactWay

    rng = random.Random(args.seed)
    await fresh_database(args)
    db = Database(args.database_url)
    userids = await seed(db, args.stores, 2, rng)
    await db.dispose()
    state = EmulatorState()
    for userid in userids:
        state.add_member(userid)
    runner, api_base = await start_emulator(state)
    queries = [random_point(rng, spread_share=0.05) for _ in range(args.queries)]
    from bot.features import wiring

    async with open_services(settings_for(args, api_base), wiring=wiring(), migrate=False) as services:
        qrcode = await active_code(services, "bench")
        directory = directory_for(services)
        await directory.refresh(services)
        # Steady state: every guide's contact way exists and was checked with WeCom recently.
        async with services.db.session() as session, session.begin():
            for userid in userids:
                session.add(ContactWay(guide_userid=userid, channel_code="poster", store_code=f"S{userid[1:6]}",
                                       state=f"p.{userid}", config_id=f"cfg-{userid}", qr_code="https://qr"))
        for userid in userids:
            await services.kv.set(f"contact_way_qr:{userid}:poster", "https://qr", ttl=3600)
        for lat, lng in queries[:500]:  # warm-up
            await locate(services, qrcode, lat, lng, "gcj02", "bench")
        now = utcnow()
        lookup, whole = [], []
        for lat, lng in queries:
            started = time.perf_counter()
            directory.nearest(lat, lng, qrcode.radius_m, now, limit=6)
            lookup.append((time.perf_counter() - started) * 1000)
        found = 0
        for lat, lng in queries:
            started = time.perf_counter()
            offer = await locate(services, qrcode, lat, lng, "gcj02", "bench")
            whole.append((time.perf_counter() - started) * 1000)
            found += offer["guide"] is not None
    await runner.cleanup()
    print(f"{args.stores} stores, {len(queries)} customers, radius 5000 m, {args.backend}; "
          f"a guide offered to {found}")
    print(f"store lookup (ms)    {percentiles(lookup)}")
    print(f"whole locate (ms)    {percentiles(whole)}")


def serve(port: int, settings_fields: dict) -> None:
    import logging

    from aiohttp import web

    from bot.app import create_app

    logging.disable(logging.WARNING)
    settings = Settings(_env_file=None, **settings_fields)
    web.run_app(create_app(settings, run_jobs=True, migrate=False), host="127.0.0.1", port=port,
                print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def bench_burst(args) -> None:
    import aiohttp

    from bot.emulator import EmulatorDriver, EmulatorState, start_emulator
    from bot.storage import Database
    from bot.stores.models import ContactWay
    from bot.wecom.crypto import CallbackCrypto

    welcomed: dict[str, float] = {}

    class TimedState(EmulatorState):
        def deliver(self, channel, **message):
            if channel == "welcome":
                welcomed[message["to"]] = time.perf_counter()
            return super().deliver(channel, **message)

    rng = random.Random(args.seed)
    await fresh_database(args)
    db = Database(args.database_url)
    userids = (await seed(db, 100, 2, rng))[:200]
    async with db.session() as session, session.begin():  # the contact ways customers scanned
        for i, userid in enumerate(userids):
            session.add(ContactWay(guide_userid=userid, channel_code="poster", store_code=f"S{i // 2:05d}",
                                   state=f"poster.S{i // 2:05d}.{i:06x}", config_id=f"cfg{i}", qr_code=""))
    await db.dispose()
    state = TimedState()
    for userid in userids:
        state.add_member(userid)
    emulator, api_base = await start_emulator(state)
    port = free_port()
    fields = settings_for(args, api_base, job_concurrency=args.concurrency, job_poll_seconds=0.05).model_dump()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port, fields), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}/wecom/callback"
    crypto = CallbackCrypto(EMULATOR_TOKEN, EMULATOR_AES_KEY, EMULATOR_CORP_ID)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as session:
        for _ in range(100):  # wait for the service to listen
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz"):
                    break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        driver = EmulatorDriver(state, url, crypto, session)
        total, sent, statuses = args.rate * args.seconds, {}, []

        async def add(i: int) -> None:
            guide = rng.randrange(len(userids))
            external = f"wmB{i:06d}"
            sent[external] = time.perf_counter()
            result = await driver.customer_adds_guide(external, userids[guide], f"poster.S{guide // 2:05d}.{guide:06x}")
            statuses.append(result["http_status"])

        start, tasks = time.perf_counter(), []
        for i in range(total):
            delay = start + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(add(i)))
        await asyncio.gather(*tasks)
        posting = time.perf_counter() - start
        deadline = time.perf_counter() + 60
        while len(welcomed) < total and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    server.terminate()
    await emulator.cleanup()
    latencies = [(welcomed[e] - t) * 1000 for e, t in sent.items() if e in welcomed]
    print(f"{total} add events at {args.rate}/s for {args.seconds} s ({posting:.1f} s to post), {args.backend}, "
          f"job concurrency {args.concurrency}")
    print(f"callbacks answered 200: {statuses.count(200)}/{total}; welcomes received: {len(latencies)}/{total}; "
          f"missed: {total - len(latencies)}")
    print(f"callback → welcome (ms)  {percentiles(latencies)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["locate", "burst"])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=5_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32, help="job runner concurrency (burst)")
    parser.add_argument("--no-benefit", action="store_true",
                        help="no membership/coupon with the binding (MEMBERS_CREATE_MEMBER_ON_BINDING=false)")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    print("$", shlex.join([Path(sys.executable).name, *sys.argv]))
    if args.no_benefit:
        os.environ["MEMBERS_CREATE_MEMBER_ON_BINDING"] = "false"  # read by the spawned service
    if args.backend == "postgres":
        args.database_url, args.redis_url = PG_URL, REDIS_URL
    else:
        args.database_url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-lbs-')}/bench.db"
        args.redis_url = None
    args.database_url = Settings(_env_file=None, database_url=args.database_url).database_url
    asyncio.run(bench_locate(args) if args.what == "locate" else bench_burst(args))


if __name__ == "__main__":
    main()
