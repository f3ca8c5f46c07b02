"""SOP engine at scale: E enrolments across G guides, one tick materialising D due steps (a
group_send step) into one outreach per guide, on SQLite or PostgreSQL. Prints the tick's time and
this process's peak RSS.

    .venv/bin/python bench/sop_scale.py --backend sqlite --enrolments 100000 --guides 1000 --due 10000
    .venv/bin/python bench/sop_scale.py --backend postgresql ...

Seeding is bulk INSERTs (not timed). No WeCom calls: the tick plans and queues the sends; the
fan-out is the outreach engine's (bench/campaign_fanout.py measures it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import sys
import tempfile
import time
import types
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BATCH = 5000


async def prepare(backend: str) -> tuple[str, callable]:
    if backend == "sqlite":
        path = os.path.join(tempfile.mkdtemp(), "sop.db")
        return f"sqlite+aiosqlite:///{path}", None
    import asyncpg

    name = f"sop_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()

    async def drop():
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()

    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}", drop


async def seed(db, enrolments: int, guides: int, due: int, now: dt.datetime) -> None:
    from sqlalchemy import insert

    from bot.customers.models import Customer
    from bot.stores.models import Guide, Store
    from sop.engine.models import SopEnrolment, SopRun, SopTemplate, SopVersion

    document = {"code": "bench", "name": "bench", "trigger": {"event": "friend_added"}, "exit_on": ["unfriended"],
                "window": {"from": "00:00", "to": "23:59"},
                "steps": [{"key": "d1", "after": {"days": 1}, "reach": "group_send", "content": {"text": "hi {guide_name}"}}]}
    async with db.session() as session, session.begin():
        stores = max(1, guides // 10)
        await session.execute(insert(Store), [dict(code=f"S{s:04d}", name=f"store {s}", city="上海", address="-",
                                                   lat=31.2, lng=121.4, coord_system="gcj02") for s in range(stores)])
        await session.execute(insert(Guide), [dict(userid=f"g{g:05d}", name=f"guide {g}", store_code=f"S{g % stores:04d}")
                                              for g in range(guides)])
        # Created after every customer was bound: the friend_added scan runs and finds nobody new.
        session.add(SopTemplate(code="bench", name="bench", status="active", version=1, created_at=now - dt.timedelta(days=1),
                                updated_at=now))
        session.add(SopVersion(code="bench", version=1, document=document, created_at=now))
    bound = now - dt.timedelta(days=2)
    for start in range(0, enrolments, BATCH):
        ids = range(start, min(enrolments, start + BATCH))
        async with db.session() as session, session.begin():
            await session.execute(insert(Customer), [dict(external_userid=f"wm{i:08d}", name="", guide_userid=f"g{i % guides:05d}",
                                                          store_code=f"S{(i % guides) % max(1, guides // 10):04d}",
                                                          status="bound", tags=[], bound_at=bound, first_bound_at=bound,
                                                          created_at=bound, updated_at=bound) for i in ids])
            await session.execute(insert(SopEnrolment), [dict(id=i + 1, code="bench", version=1, trigger_key="added:0",
                                                              customer_id=i + 1, external_userid=f"wm{i:08d}", anchor_at=bound,
                                                              status="active", created_at=bound) for i in ids])
            await session.execute(insert(SopRun), [dict(enrolment_id=i + 1, code="bench", version=1, step_key="d1",
                                                        due_at=(now - dt.timedelta(minutes=1)) if i < due else now + dt.timedelta(days=5),
                                                        status="waiting", external_userid=f"wm{i:08d}", updated_at=bound)
                                                   for i in ids])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--enrolments", type=int, default=100_000)
    parser.add_argument("--guides", type=int, default=1_000)
    parser.add_argument("--due", type=int, default=10_000)
    args = parser.parse_args()

    from bot.kv import open_store
    from bot.storage import Database
    from bot.storage.migrate import upgrade
    from sop.engine.tick import run_tick

    url, drop = await prepare(args.backend)
    try:
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        now = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        await seed(db, args.enrolments, args.guides, args.due, now)
        seeded = time.perf_counter() - started
        services = types.SimpleNamespace(db=db, kv=open_store(None), settings=None, wake_runner=lambda: None)
        started = time.perf_counter()
        report = await run_tick(services, now)
        took = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"backend={args.backend} enrolments={args.enrolments} guides={args.guides} due={args.due} "
              f"seed={seeded:.1f}s tick={took:.1f}s items={report.items} queued={report.queued} "
              f"skipped={report.skipped} peak_rss={peak_mb:.0f}MB")
        await db.dispose()
    finally:
        if drop:
            await drop()


if __name__ == "__main__":
    asyncio.run(main())
