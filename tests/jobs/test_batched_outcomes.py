"""Outcomes of a burst of jobs are written together: a handful of statements, not one per job."""

from __future__ import annotations

from sqlalchemy import event

from bot.jobs import enqueue, tasks


@tasks("test.fails_once_and_for_all", max_attempts=1)
async def fails_once_and_for_all(ctx, payload):
    raise ValueError("no")


@tasks("test.quick")
async def quick(ctx, payload):
    return None


async def test_a_burst_of_failures_and_completions_is_recorded_in_a_few_statements(db, runner_for, rows):
    async with db.session() as session, session.begin():
        for n in range(20):
            await enqueue(session, "test.fails_once_and_for_all" if n % 2 else "test.quick", {"n": n})
    outcome_writes = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE jobs") and "finished_at" in statement and "RETURNING" not in statement:
            outcome_writes.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await runner_for(db, concurrency=20).run(burst=True)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    statuses = sorted(job.status for job in await rows(db))
    assert statuses == ["dead"] * 10 + ["done"] * 10
    assert len(outcome_writes) <= 5, len(outcome_writes)  # one per failure would be 10 or more


tasks.install([fails_once_and_for_all, quick])  # the jobs these tests run (the app installs its features')
