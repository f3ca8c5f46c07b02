"""Benchmark the 微信客服 chat end to end: N customers ask「我还有多少积分」at the same moment.

    .venv/bin/python bench/chat.py [--customers 200] [--rounds 3] [--database-url URL] [--redis-url URL]

The service runs with its in-process job runner against the local WeCom emulator, both over real
HTTP on localhost. Each round is one burst: every customer writes at the same moment (one
kf_msg_or_event callback each), and the next round starts once the service's queue is empty, so a
round measures a burst, not a burst plus the tail of the one before. Latency per customer: from
the start of the callback POST to the answer reaching the emulator (kf/send_msg delivered). Then the points balance read is timed
for members whose ledgers hold 10 … 100,000 entries. Without --database-url: a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.config import (  # noqa: E402
    EMULATOR_AES_KEY,
    EMULATOR_AGENT_ID,
    EMULATOR_CORP_ID,
    EMULATOR_SECRET,
    EMULATOR_TOKEN,
    load_settings,
)
from bot.customers.models import Customer  # noqa: E402
from bot.emulator import EmulatorDriver, EmulatorState, start_emulator  # noqa: E402
from bot.members import ledger  # noqa: E402
from bot.members.chat.answers import Asker, points  # noqa: E402
from bot.members.config import MembersConfig  # noqa: E402
from bot.members.members import create_member  # noqa: E402
from bot.members.models import Member, PointsEntry  # noqa: E402
from bot.services import SERVICES  # noqa: E402
from bot.storage import utcnow  # noqa: E402
from bot.storage.models import Job  # noqa: E402
from bot.wecom.crypto import CallbackCrypto  # noqa: E402

KF = "wkBENCH"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def seed(db, config: MembersConfig, customers: int) -> None:
    async with db.session() as session, session.begin():
        for index in range(customers):
            session.add(Customer(external_userid=f"wm-bench-{index}", name=f"客户{index}", tags=[]))
            member, _ = await create_member(session, config, source="admin", external_userid=f"wm-bench-{index}")
            member = await ledger.lock_member(session, member.id)
            await ledger.credit(session, member, 100 + index, kind="earn", key=f"bench:{index}", valid_days=365)


async def one_round(driver: EmulatorDriver, state: EmulatorState, customers: int, round_no: int) -> list[float]:
    delivered: dict[str, float] = {}
    deliver = state.deliver
    all_answered = asyncio.Event()

    def timed_deliver(channel: str, **message):
        delivered.setdefault(message.get("to", ""), time.perf_counter())
        if len(delivered) >= customers:
            all_answered.set()
        return deliver(channel, **message)

    state.deliver = timed_deliver
    started: dict[str, float] = {}

    async def ask(index: int) -> None:
        who = f"wm-bench-{index}"
        started[who] = time.perf_counter()
        await driver.customer_writes_kf(KF, who, "我还有多少积分？")

    await asyncio.gather(*(ask(i) for i in range(customers)))
    try:
        await asyncio.wait_for(all_answered.wait(), 60)
    except TimeoutError:
        pass
    state.deliver = deliver
    if len(delivered) < customers:
        raise SystemExit(f"round {round_no}: only {len(delivered)}/{customers} answers arrived within 60 s")
    return [(delivered[who] - started[who]) * 1000 for who in started]


async def fresh_servers(database_url: str, redis_url: str | None) -> None:
    """PostgreSQL: the bench's database dropped and made again; its Redis database flushed."""
    import asyncpg
    import redis.asyncio as aioredis

    base, name = database_url.replace("+asyncpg", "").rsplit("/", 1)
    admin = await asyncpg.connect(base + "/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    if redis_url:
        client = aioredis.from_url(redis_url)
        await client.flushdb()
        await client.aclose()


async def queue_drained(db, within: float = 120.0) -> None:
    """Wait until no job is queued or running (due now: not tomorrow's housekeeping)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with db.engine.connect() as conn:
            left = await conn.scalar(select(func.count()).select_from(Job).where(
                Job.status.in_(("queued", "running")), Job.run_at <= time.time() + 30))
        if not left:
            return
        await asyncio.sleep(0.1)
    raise SystemExit("the queue did not drain between rounds")


async def balance_read_times(db, config: MembersConfig, lengths: list[int]) -> list[tuple[int, float, float]]:
    """(ledger length, median µs to read the balance, median ms for the whole points answer)."""
    results = []
    for length in lengths:
        async with db.session() as session, session.begin():
            member, _ = await create_member(session, config, source="admin", external_userid=f"wm-long-{length}")
            now = utcnow()
            rows = [{"member_id": member.id, "kind": "adjust", "points": 1, "balance_after": i + 1,
                     "idempotency_key": f"long-{length}-{i}", "reason": "", "actor": "bench", "created_at": now}
                    for i in range(length)]
            for start in range(0, length, 5000):
                await session.execute(insert(PointsEntry), rows[start:start + 5000])
            member.points_balance = length
        reads, answers = [], []
        async with db.session() as session:
            for _ in range(200):
                t0 = time.perf_counter()
                await session.scalar(select(Member.points_balance).where(Member.id == member.id))
                reads.append((time.perf_counter() - t0) * 1e6)
            asker = Asker(member.external_userid, await session.get(Member, member.id), None, "bench")
            for _ in range(50):
                t0 = time.perf_counter()
                await points(session, config, asker)
                answers.append((time.perf_counter() - t0) * 1000)
        results.append((length, statistics.median(reads), statistics.median(answers)))
    return results


async def main(args: argparse.Namespace) -> None:
    config = MembersConfig(_env_file=None, join_bonus_points=0)
    state = EmulatorState()
    state.add_kf_account(KF)
    emulator, api_base = await start_emulator(state, port=0)
    database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench-chat.db"
    if args.database_url:
        await fresh_servers(args.database_url, args.redis_url)
    settings = load_settings(
        _env_file=None, database_url=database_url, redis_url=args.redis_url, wecom_corp_id=EMULATOR_CORP_ID,
        wecom_agent_id=EMULATOR_AGENT_ID, wecom_secret=EMULATOR_SECRET, wecom_token=EMULATOR_TOKEN,
        wecom_encoding_aes_key=EMULATOR_AES_KEY, wecom_api_base_url=api_base, log_level="WARNING",
        job_poll_seconds=0.05,
    )
    app = create_app(settings, run_jobs=True, migrate=True, configs=[config])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    callback_url = f"http://127.0.0.1:{runner.addresses[0][1]}/wecom/callback"
    state.callback_url = callback_url
    services = app[SERVICES]
    await seed(services.db, config, args.customers)
    crypto = CallbackCrypto(EMULATOR_TOKEN, EMULATOR_AES_KEY, EMULATOR_CORP_ID)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        driver = EmulatorDriver(state, callback_url, crypto, session)
        all_latencies = []
        for round_no in range(1, args.rounds + 1):
            await queue_drained(services.db)
            latencies = await one_round(driver, state, args.customers, round_no)
            all_latencies += latencies
            print(f"round {round_no}: {args.customers} customers  p50 {percentile(latencies, 50):.0f} ms  "
                  f"p95 {percentile(latencies, 95):.0f} ms  p99 {percentile(latencies, 99):.0f} ms  "
                  f"max {max(latencies):.0f} ms")
        print(f"all rounds: p50 {percentile(all_latencies, 50):.0f} ms  p99 {percentile(all_latencies, 99):.0f} ms")
    for length, read_us, answer_ms in await balance_read_times(services.db, config, [10, 1_000, 10_000, 100_000]):
        print(f"ledger of {length:>7} entries: balance read {read_us:.0f} µs, whole points answer {answer_ms:.2f} ms")
    await runner.cleanup()
    await emulator.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="PostgreSQL URL: its database is dropped and made again")
    parser.add_argument("--redis-url", help="Redis URL: its database is flushed")
    asyncio.run(main(parser.parse_args()))
