"""/metrics counts the queue by walking each status's partial index up to a cap, never the table."""

from __future__ import annotations

import time

from sqlalchemy import text

from bot.ops import QUEUE_DEPTH_CAP, queue_depth_statement
from tests.jobs.test_claim_plan import _fill_queue

BACKLOG = 30_000


async def _plan(conn, statement) -> str:
    compiled = statement.compile(dialect=conn.dialect)
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned anyway
        params = [compiled.params[name] for name in compiled.positiontup]
        rows = await conn.exec_driver_sql(f"EXPLAIN {compiled}".replace("$1", str(params[0])))
        return "\n".join(row[0] for row in rows)
    rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values()))
    return "\n".join(row[-1] for row in rows)


async def test_queue_depth_reads_partial_indexes_and_stops_at_the_cap(db):
    now = time.time()
    async with db.engine.begin() as conn:
        await _fill_queue(conn, conn.dialect.name, BACKLOG, now)
        await conn.execute(text("UPDATE jobs SET status = 'dead', finished_at = created_at WHERE id % 1000 = 0"))
        await conn.execute(text("UPDATE jobs SET status = 'done', finished_at = created_at WHERE id % 1000 = 1"))
    async with db.engine.connect() as conn:
        for status, index in (("queued", "ix_jobs_queued"), ("running", "ix_jobs_running_lease"),
                              ("dead", "ix_jobs_dead")):
            plan = await _plan(conn, queue_depth_statement(status))
            assert index in plan, plan
            assert "Seq Scan" not in plan and "SCAN jobs\n" not in plan + "\n", plan
        await conn.rollback()
        counts = {status: await conn.scalar(queue_depth_statement(status)) for status in ("queued", "running", "dead")}
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            await conn.scalar(queue_depth_statement("queued"))
            timings.append(time.perf_counter() - started)
    assert counts == {"queued": QUEUE_DEPTH_CAP, "running": 0, "dead": BACKLOG // 1000}
    assert min(timings) < 0.05, f"a capped count took {min(timings) * 1000:.1f} ms"
