"""Claims stay an ordered walk of ix_jobs_queued at a 100k backlog, whatever the statistics say."""

from __future__ import annotations

import time

from sqlalchemy import text

from bot.jobs.runner import claim_statement

BACKLOG = 100_000


async def _fill_queue(conn, dialect: str, count: int, now: float) -> None:
    if dialect == "postgresql":
        await conn.execute(text(
            "INSERT INTO jobs (kind, payload, priority, status, attempts, faults, max_attempts, run_at, created_at) "
            "SELECT 'test.count', '{}', n % 3, 'queued', 0, 0, 6, :now - n, now() "
            "FROM generate_series(1, :count) AS n"), {"now": now, "count": count})
    else:
        await conn.execute(text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
            "INSERT INTO jobs (kind, payload, priority, status, attempts, faults, max_attempts, run_at, created_at) "
            "SELECT 'test.count', '{}', i % 3, 'queued', 0, 0, 6, :now - i, CURRENT_TIMESTAMP FROM n"),
            {"now": now, "count": count})


async def test_the_claim_walks_the_queued_index_without_sorting_at_100k(db):
    now = time.time()
    statement = claim_statement(16, now, now + 60, "planner-test")
    async with db.engine.connect() as conn:
        dialect = conn.dialect.name
        # PostgreSQL: statistics taken while the queue was short (a few queued among finished
        # jobs). SQLite: none, as in production (it then guessed for the index on status).
        await _fill_queue(conn, dialect, 20, now)
        await conn.execute(text("UPDATE jobs SET status = 'done' WHERE id % 4 <> 0"))
        await conn.commit()
        if dialect == "postgresql":
            await conn.execute(text("ANALYZE jobs"))
            await conn.commit()
        # ... then the backlog arrives.
        await _fill_queue(conn, dialect, BACKLOG, now)
        await conn.commit()

        compiled = statement.compile(dialect=conn.dialect)
        if dialect == "postgresql":
            # The generic plan is what a prepared statement ends up with after five runs.
            params = [compiled.params[name] for name in compiled.positiontup]
            await conn.exec_driver_sql(f"PREPARE claim_plan AS {compiled}")
            await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            values = ", ".join(f"'{value}'" if isinstance(value, str) else repr(value) for value in params)
            plan_rows = await conn.exec_driver_sql(f"EXPLAIN EXECUTE claim_plan({values})")
            plan = "\n".join(row[0] for row in plan_rows)
            assert "ix_jobs_queued" in plan, plan
            assert "Sort" not in plan, plan
        else:
            plan_rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values()))
            plan = "\n".join(row[-1] for row in plan_rows)
            assert "USING INDEX ix_jobs_queued" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # SQLite's sort
        await conn.rollback()


async def test_a_claim_at_100k_takes_the_most_urgent_jobs_in_milliseconds(db):
    now = time.time()
    async with db.engine.begin() as conn:
        await _fill_queue(conn, conn.dialect.name, BACKLOG, now)
    claim = claim_statement(16, now, now + 60, "timing-test")
    async with db.engine.connect() as conn:
        timings = []
        for _ in range(6):  # the best of (warm) runs: the machine is shared, a sort of 100k rows is not
            started = time.perf_counter()
            claimed = (await conn.execute(claim)).all()
            timings.append(time.perf_counter() - started)
            await conn.rollback()  # the statement is timed, not the commit's disk flush
        next_in_line = await conn.scalar(text(
            "SELECT min(run_at) FROM jobs WHERE status = 'queued' AND priority = 2 AND id NOT IN ({})".format(
                ", ".join(str(job.id) for job in claimed))))
    assert len(claimed) == 16 and all(job.priority == 2 for job in claimed)
    assert max(job.run_at for job in claimed) <= next_in_line  # the oldest of the top priority
    assert min(timings[1:]) < 0.010, f"a claim took {min(timings[1:]) * 1000:.1f} ms"  # sorting: 14-34 ms
