"""CPU per customer-add event and per answered 微信客服 question, measured on the real service.

    .venv/bin/python bench/pipeline_cpu.py [--adds 2000] [--rate 100] [--questions 200] [--question-rate 20]
    .venv/bin/python bench/pipeline_cpu.py --postgres postgresql://postgres@127.0.0.1:5432/bench_pipeline \
        --redis redis://127.0.0.1:6379/12

Embedded default: one `wecom-assistant serve` process (SQLite file + in-process KV + job runner).
With --postgres/--redis: one `serve --no-jobs` and one `worker` process. This process hosts the
WeCom emulator (so its CPU is not counted) and posts encrypted, signed `add_external_contact`
callbacks open loop at --rate, like WeCom. It waits until every welcome reached the emulator and
no job is left to run (tags, profile, coupon), then prints the service processes' CPU seconds
(utime + stime, before/after) ÷ events, the SQL statements and transactions per event (counted by
a SQLAlchemy event hook this script installs in the service processes) and WeCom calls per event.
Then the same for --questions customers each asking 「我还有多少积分」 in 微信客服.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STORES, GUIDES_PER_STORE, CHANNEL, KF = 50, 2, "poster", "wkBENCH"
COUNTS_ENV = "PIPELINE_BENCH_COUNTS"
PROFILE = False  # --profile: py-spy stacks of the service processes for each measured phase


def run_as_service(argv: list[str]) -> None:
    """The service process: the real CLI, plus statement/transaction counters written on SIGUSR1."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts, texts = collections.Counter(), collections.Counter()

    def statement(_conn, _cursor, sql, *_):
        counts["statements"] += 1
        texts[" ".join(sql.split())[:90]] += 1

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Engine, "begin", lambda *_: counts.update(("transactions",)))

    def dump(*_):
        Path(os.environ[COUNTS_ENV]).write_text(json.dumps(counts))
        Path(os.environ[COUNTS_ENV] + ".sql").write_text(json.dumps(texts.most_common(), ensure_ascii=False))

    signal.signal(signal.SIGUSR1, dump)
    from bot.cli import main

    sys.argv = ["wecom-assistant", *argv]
    main()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def fresh_database(url: str, redis_url: str | None) -> None:
    from bot.storage.migrate import upgrade

    if url.startswith("postgresql"):
        import asyncpg
        import redis.asyncio as aioredis

        base, name = url.replace("+asyncpg", "").rsplit("/", 1)
        admin = await asyncpg.connect(base + "/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        client = aioredis.from_url(redis_url)
        await client.flushdb()
        await client.aclose()
    await asyncio.to_thread(upgrade, url)


async def seed(url: str) -> list[tuple[str, str]]:
    """Stores, guides, a channel with tags and welcome text, a contact way per guide; (userid, state)."""
    from bot.storage import Database
    from bot.stores.models import Channel, ContactWay, Guide, Store

    db = Database(url)
    scanned = []
    async with db.session() as session, session.begin():
        session.add(Channel(code=CHANNEL, name="海报", tag_names=["海报", "新客"],
                            welcome_text="您好，我是{guide}，{store}欢迎您！"))
        for i in range(STORES):
            session.add(Store(code=f"S{i:03d}", name=f"门店{i}", city="上海", address="", lat=31.2, lng=121.4,
                              status="open"))
        await session.flush()
        for i in range(STORES):
            for j in range(GUIDES_PER_STORE):
                userid, state = f"g{i:03d}{j}", f"{CHANNEL}.S{i:03d}.{i:03d}{j}"
                session.add(Guide(userid=userid, name=f"导购{i}-{j}", store_code=f"S{i:03d}", daily_add_limit=10**6))
                session.add(ContactWay(guide_userid=userid, channel_code=CHANNEL, store_code=f"S{i:03d}",
                                       state=state, config_id=f"cfg-{userid}", qr_code="https://qr"))
                scanned.append((userid, state))
    await db.dispose()
    return scanned


class Service:
    """The service's processes, their CPU clocks and statement counters."""

    def __init__(self, env: dict, postgres: bool, workdir: Path) -> None:
        self.counts_dir, self.processes = workdir, []
        commands = [["serve", "--no-jobs"], ["worker"]] if postgres else [["serve"]]
        for i, command in enumerate(commands):
            process_env = {**env, COUNTS_ENV: str(workdir / f"counts-{i}.json")}
            output = (workdir / f"service-{i}.log").open("ab")
            self.processes.append(subprocess.Popen(
                [sys.executable, __file__, "--as-service", *command], env=process_env, cwd=workdir,
                stdout=output, stderr=subprocess.STDOUT))

    def cpu_seconds(self) -> float:
        import psutil

        total = 0.0
        for process in self.processes:
            times = psutil.Process(process.pid).cpu_times()
            total += times.user + times.system
        return total

    async def counts(self) -> collections.Counter:
        total = collections.Counter()
        for i, process in enumerate(self.processes):
            path = self.counts_dir / f"counts-{i}.json"
            path.unlink(missing_ok=True)
            process.send_signal(signal.SIGUSR1)
            for _ in range(100):
                if path.exists() and path.read_text():
                    break
                await asyncio.sleep(0.02)
            total.update(json.loads(path.read_text()))
        return total

    def start_profiling(self, label: str) -> list[subprocess.Popen]:
        """py-spy on every service process (raw stacks, idle excluded) until stop_profiling."""
        py_spy = Path(sys.executable).parent / "py-spy"
        return [subprocess.Popen([str(py_spy), "record", "-p", str(process.pid), "-r", "250", "-f", "raw",
                                  "-o", str(self.counts_dir / f"profile-{i}-{label.split()[1]}.txt")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for i, process in enumerate(self.processes)]

    @staticmethod
    def stop_profiling(profilers: list[subprocess.Popen]) -> None:
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # jobs still running (e.g. a broken run): do not leave it behind
                process.kill()
                process.wait()


async def jobs_left(url: str) -> int:
    """Jobs due now that are not finished (ignoring nightly housekeeping scheduled for later)."""
    from sqlalchemy import func, or_, select

    from bot.jobs.cron import KEY_PREFIX
    from bot.storage import Database
    from bot.storage.models import Job

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            # Not the next occurrence of a recurring job (the SOP tick, every minute): waiting up to
            # 30 s for it counted that much idle CPU against the events.
            return await conn.scalar(select(func.count()).select_from(Job).where(
                Job.status.in_(("queued", "running")), Job.run_at <= time.time() + 30,
                or_(Job.status == "running", Job.dedupe_key.is_(None), Job.dedupe_key.not_like(f"{KEY_PREFIX}%"))))
    finally:
        await db.dispose()


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


async def open_loop(count: int, rate: float, act) -> float:
    """Start act(i) at i/rate seconds (like WeCom, not waiting for answers); the seconds it took."""
    started, tasks = time.perf_counter(), []
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(act(i)))
    results = await asyncio.gather(*tasks)
    bad = [r for r in results if r.get("http_status") != 200]
    if bad:
        raise SystemExit(f"{len(bad)} callbacks not answered 200, e.g. {bad[0]}")
    return time.perf_counter() - started


async def measure(service: Service, state, url: str, label: str, events: int, run, done, latencies) -> dict:
    """Run, then wait until `done()` (every answer delivered) or the queue is empty (some never will be)."""
    calls_before, counts_before, cpu_before = len(state.calls), await service.counts(), service.cpu_seconds()
    profilers = service.start_profiling(label) if PROFILE else []
    wall = time.perf_counter()
    posting = await run()

    async def finished() -> bool:
        return await done() or await _no_jobs(url)

    await wait_until(finished, 300 + events, label)
    await wait_until(lambda: _no_jobs(url), 300, f"{label}: jobs to finish")
    wall = time.perf_counter() - wall
    cpu = service.cpu_seconds() - cpu_before
    service.stop_profiling(profilers)
    counts = await service.counts()
    counts.subtract(counts_before)
    calls = collections.Counter(call["path"] for call in list(state.calls)[calls_before:])
    result = {"what": label, "events": events, "posting_s": round(posting, 1), "wall_s": round(wall, 1),
              "cpu_s": round(cpu, 2), "cpu_ms_per_event": round(cpu * 1000 / events, 2),
              "delivered": len(latencies()), "latency_ms": percentiles(latencies()),
              "statements_per_event": round(counts["statements"] / events, 1),
              "transactions_per_event": round(counts["transactions"] / events, 1),
              "wecom_calls_per_event": {path: round(n / events, 2) for path, n in sorted(calls.items())}}
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return result


def statements_by_text(workdir: Path) -> collections.Counter:
    total = collections.Counter()
    for path in workdir.glob("counts-*.json.sql"):
        total.update(dict(json.loads(path.read_text())))
    return total


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values) or [float("nan")]
    return {f"p{q}": round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 1) for q in (50, 99)}


async def _no_jobs(url: str) -> bool:
    return await jobs_left(url) == 0


async def main(args) -> list[dict]:
    import aiohttp

    from bot.config import (
        EMULATOR_AES_KEY,
        EMULATOR_AGENT_ID,
        EMULATOR_CORP_ID,
        EMULATOR_SECRET,
        EMULATOR_TOKEN,
        Settings,
    )
    from bot.emulator import EmulatorDriver, EmulatorState, start_emulator
    from bot.wecom.crypto import CallbackCrypto

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    print(f"work directory (database, service logs, statements by text in counts-*.json.sql): {workdir}")
    postgres = bool(args.postgres)
    url = args.postgres or f"sqlite:///{workdir}/bench.db"
    url = Settings(_env_file=None, database_url=url).database_url  # the driver-qualified URL
    await fresh_database(url, args.redis)
    scanned = await seed(url)

    delivered, sent_at, arrived_at = collections.Counter(), {}, {}
    state = EmulatorState(record_limit=10**6)
    original_deliver = state.deliver

    def counting_deliver(channel, **message):
        delivered[channel] += 1
        arrived_at.setdefault((channel, message.get("to")), time.perf_counter())
        return original_deliver(channel, **message)

    def latencies(channel: str, prefix: str) -> list[float]:
        return [(arrived_at[(channel, who)] - at) * 1000 for who, at in sent_at.items()
                if who.startswith(prefix) and (channel, who) in arrived_at]

    state.deliver = counting_deliver
    for userid, _ in scanned:
        state.add_member(userid)
    state.add_kf_account(KF)
    emulator, api_base = await start_emulator(state)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "WECOM_CORP_ID": EMULATOR_CORP_ID,
           "WECOM_AGENT_ID": str(EMULATOR_AGENT_ID), "WECOM_SECRET": EMULATOR_SECRET, "WECOM_TOKEN": EMULATOR_TOKEN,
           "WECOM_ENCODING_AES_KEY": EMULATOR_AES_KEY, "WECOM_API_BASE_URL": api_base,
           "WECOM_API_CALLS_PER_MINUTE": "10000", "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING",
           "MEMBERS_JOIN_BONUS_POINTS": "100"}
    env.pop("REDIS_URL", None)
    if args.redis:
        env["REDIS_URL"] = args.redis
    service = Service(env, postgres, workdir)
    crypto = CallbackCrypto(EMULATOR_TOKEN, EMULATOR_AES_KEY, EMULATOR_CORP_ID)
    rng = random.Random(args.seed)
    results = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            driver = EmulatorDriver(state, f"http://127.0.0.1:{port}/wecom/callback", crypto, http)

            def adds(prefix: str, count: int, rate: float):
                async def add(i: int) -> dict:
                    userid, way_state = rng.choice(scanned)
                    sent_at[f"wm{prefix}{i:06d}"] = time.perf_counter()
                    return await driver.customer_adds_guide(f"wm{prefix}{i:06d}", userid, way_state, f"客户{i}")

                async def run() -> float:
                    return await open_loop(count, rate, add)

                return run

            async def all_welcomed(target: int) -> bool:
                return delivered["welcome"] >= target

            # Warm-up: imports, caches, token, corp tags, prepared statements.
            await adds("W", 20, 20)()
            await wait_until(lambda: all_welcomed(20), 60, "warm-up welcomes")
            await wait_until(lambda: _no_jobs(url), 60, "warm-up jobs")
            idle_before = service.cpu_seconds()
            await asyncio.sleep(3)
            idle = (service.cpu_seconds() - idle_before) / 3
            print(f"idle CPU of the service: {idle * 1000:.1f} ms/s", flush=True)

            welcomed_before = delivered["welcome"]
            results.append(await measure(
                service, state, url, f"customer add at {args.rate}/s", args.adds, adds("B", args.adds, args.rate),
                lambda: all_welcomed(welcomed_before + args.adds), lambda: latencies("welcome", "wmB")))

            askers = [f"wmB{i:06d}" for i in range(args.questions)]

            asked_at = {}

            async def ask(i: int) -> dict:
                asked_at[askers[i]] = time.perf_counter()
                return await driver.customer_writes_kf(KF, askers[i], "我还有多少积分？")

            async def run_questions() -> float:
                return await open_loop(len(askers), args.question_rate, ask)

            answered_before = delivered["kf"]

            async def all_answered() -> bool:
                return delivered["kf"] >= answered_before + len(askers)

            if askers:
                results.append(await measure(service, state, url, f"kf question at {args.question_rate}/s",
                                             len(askers), run_questions, all_answered, lambda: [
                    (arrived_at[("kf", who)] - at) * 1000 for who, at in asked_at.items() if ("kf", who) in arrived_at]))
        if args.statements:
            for text, n in statements_by_text(workdir).most_common(40):
                print(f"{n:8d}  {text}")
    finally:
        service.stop()
        await emulator.cleanup()
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="add events per second (open loop)")
    parser.add_argument("--questions", type=int, default=200, help="微信客服 questions (≤ --adds)")
    parser.add_argument("--question-rate", type=float, default=20.0)
    parser.add_argument("--postgres", help="PostgreSQL URL (its database is dropped and re-made)")
    parser.add_argument("--redis", help="Redis URL (its database is flushed)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--statements", action="store_true", help="list the service's SQL by count (whole run)")
    parser.add_argument("--profile", action="store_true",
                        help="record py-spy stacks of the service during each phase (profile-*.txt in the work directory)")
    args = parser.parse_args()
    if bool(args.postgres) != bool(args.redis):
        parser.error("--postgres and --redis go together")
    args.questions = min(args.questions, args.adds)
    return args


if __name__ == "__main__":
    if sys.argv[1:2] == ["--as-service"]:
        run_as_service(sys.argv[2:])
    else:
        print("$", shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
        arguments = parse_args()
        PROFILE = arguments.profile
        measured = asyncio.run(main(arguments))
        if arguments.json:
            Path(arguments.json).write_text(json.dumps(measured, ensure_ascii=False, indent=1))
