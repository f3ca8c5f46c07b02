"""SOP engine at scale: E enrolments across G guides, one tick materialising D due steps (a
group_send step) into one outreach per guide, on SQLite or PostgreSQL. Prints the tick's time and
the peak RSS of the process that runs it (a child process seeds).

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
SCRIPT = os.path.abspath(__file__)


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
    # Core inserts (executemany) of the tables: no ORM bookkeeping while seeding.
    customers, enrolled, runs = Customer.__table__, SopEnrolment.__table__, SopRun.__table__
    for start in range(0, enrolments, BATCH):
        ids = range(start, min(enrolments, start + BATCH))
        async with db.session() as session, session.begin():
            await session.execute(insert(customers), [dict(external_userid=f"wm{i:08d}", name="", guide_userid=f"g{i % guides:05d}",
                                                          store_code=f"S{(i % guides) % max(1, guides // 10):04d}",
                                                          status="bound", tags=[], bound_at=bound, first_bound_at=bound,
                                                          created_at=bound, updated_at=bound) for i in ids])
            await session.execute(insert(enrolled), [dict(id=i + 1, code="bench", version=1, trigger_key="added:0",
                                                              customer_id=i + 1, external_userid=f"wm{i:08d}", anchor_at=bound,
                                                              status="active", created_at=bound) for i in ids])
            await session.execute(insert(runs), [dict(enrolment_id=i + 1, code="bench", version=1, step_key="d1",
                                                        due_at=(now - dt.timedelta(minutes=1)) if i < due else now + dt.timedelta(days=5),
                                                        status="waiting", external_userid=f"wm{i:08d}", updated_at=bound)
                                                   for i in ids])


def watch_statements(db) -> None:
    from sqlalchemy import event

    engine = db.engine.sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):
        if os.environ.get("BENCH_EXPLAIN") and statement.startswith(os.environ["BENCH_EXPLAIN"]):
            cursor.execute("EXPLAIN " + statement, parameters)
            print("\n".join(row[0] for row in cursor.fetchall()))
        conn.info["started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):
        took = time.perf_counter() - conn.info.pop("started", time.perf_counter())
        if took > 0.05:
            print(f"{took:7.2f}s  {' '.join(statement.split())[:300]}")


async def seed_only(url: str, enrolments: int, guides: int, due: int, now: dt.datetime) -> None:
    from bot.storage import Database

    db = Database(url)
    await seed(db, enrolments, guides, due, now)
    await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--enrolments", type=int, default=100_000)
    parser.add_argument("--guides", type=int, default=1_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--seed-into", help=argparse.SUPPRESS)  # the child process that seeds
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--statements", action="store_true", help="print each statement's time")
    parser.add_argument("--profile", help="write a cProfile of the tick to this file")
    args = parser.parse_args()
    if args.seed_into:
        await seed_only(args.seed_into, args.enrolments, args.guides, args.due, dt.datetime.fromisoformat(args.now))
        return

    from bot.kv import open_store
    from bot.storage import Database
    from bot.storage.migrate import upgrade
    from sop.engine.tick import run_tick

    url, drop = await prepare(args.backend)
    try:
        await asyncio.to_thread(upgrade, url)
        now = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        # Seeded by a child process, so this process's peak RSS is the tick's (plus imports).
        child = await asyncio.create_subprocess_exec(
            sys.executable, SCRIPT, "--seed-into", url, "--now", now.isoformat(),
            "--enrolments", str(args.enrolments), "--guides", str(args.guides), "--due", str(args.due))
        if await child.wait():
            raise SystemExit("seeding failed")
        seeded = time.perf_counter() - started
        if args.backend == "postgresql":  # statistics, as a database in service has them
            import asyncpg

            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            await conn.execute("ANALYZE")
            await conn.close()
        db = Database(url)
        if args.statements:
            watch_statements(db)
        services = types.SimpleNamespace(db=db, kv=open_store(None), settings=None, wake_runner=lambda: None)
        before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        report = await run_tick(services, now)
        took = time.perf_counter() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"backend={args.backend} enrolments={args.enrolments} guides={args.guides} due={args.due} "
              f"seed={seeded:.1f}s tick={took:.1f}s items={report.items} queued={report.queued} "
              f"skipped={report.skipped} rss_before_tick={before_mb:.0f}MB peak_rss={peak_mb:.0f}MB")
        await db.dispose()
    finally:
        if drop:
            await drop()


if __name__ == "__main__":
    asyncio.run(main())
