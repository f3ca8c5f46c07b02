"""The service under benchmark, shared by the bench scripts: its processes, database and WeCom emulator.

The scripts import it as a sibling (`sys.path` holds bench/). Run as a script it is a service
process itself, `python bench/_service.py --as-service serve|worker …`: the real CLI, plus
statement/transaction counters (written on SIGUSR1) when PIPELINE_BENCH_COUNTS names a file, and
every job outcome appended to the file OUTAGE_BENCH_OUTCOMES names (unbuffered: a kill -9 loses none).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORES, GUIDES_PER_STORE, CHANNEL = 50, 2, "poster"
COUNTS_ENV = "PIPELINE_BENCH_COUNTS"
OUTCOMES_ENV = "OUTAGE_BENCH_OUTCOMES"


def run_as_service(argv: list[str]) -> None:
    """The service process: the real CLI, with the recorders its environment asks for."""
    if os.environ.get(COUNTS_ENV):
        _count_statements(os.environ[COUNTS_ENV])
    if os.environ.get(OUTCOMES_ENV):
        _record_job_outcomes(os.environ[OUTCOMES_ENV])
    from bot.cli import main

    sys.argv = ["wecom-assistant", *argv]
    main()


def _count_statements(path: str) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts, texts = collections.Counter(), collections.Counter()

    def statement(_conn, _cursor, sql, *_):
        counts["statements"] += 1
        texts[" ".join(sql.split())[:90]] += 1

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Engine, "begin", lambda *_: counts.update(("transactions",)))

    def dump(*_):
        Path(path).write_text(json.dumps(counts))
        Path(path + ".sql").write_text(json.dumps(texts.most_common(), ensure_ascii=False))

    signal.signal(signal.SIGUSR1, dump)


def _record_job_outcomes(path: str) -> None:
    from bot.jobs.runner import JobRunner

    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    original = JobRunner._run

    async def recorded(self, job, function, options):
        outcome = await original(self, job, function, options)
        os.write(descriptor, f"{job.id} {job.kind} {outcome.status} {os.getpid()}\n".encode())
        return outcome

    JobRunner._run = recorded


class ServiceProcesses:
    """Service processes by name (log: <workdir>/<name>.log), their CPU clocks and statement counters.

    counts: a file name pattern with {} for the process's index (e.g. "counts-{}.json") turns the
    statement counters on.
    """

    def __init__(self, env: dict, workdir: Path, counts: str | None = None) -> None:
        self.env, self.workdir, self.counts_pattern = env, workdir, counts
        self.commands: dict[str, list[str]] = {}
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], **extra_env: str) -> None:
        env = {**self.env, **extra_env}
        if self.counts_pattern:
            env[COUNTS_ENV] = str(self._counts_path(name))
        self.commands[name] = command
        output = (self.workdir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, __file__, "--as-service", *command], env=env, cwd=self.workdir,
            stdout=output, stderr=subprocess.STDOUT)

    def _counts_path(self, name: str) -> Path:
        index = list(self.commands).index(name) if name in self.commands else len(self.commands)
        return self.workdir / self.counts_pattern.format(index)

    def kill_and_restart(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()
        self.start(name, self.commands[name])

    def cpu_seconds(self) -> float:
        """utime + stime of every process."""
        import psutil

        total = 0.0
        for process in self.processes.values():
            times = psutil.Process(process.pid).cpu_times()
            total += times.user + times.system
        return total

    async def counts(self) -> collections.Counter:
        """Statements and transactions so far, summed over the processes (each asked by SIGUSR1)."""
        total = collections.Counter()
        for name, process in self.processes.items():
            path = self._counts_path(name)
            path.unlink(missing_ok=True)
            process.send_signal(signal.SIGUSR1)
            for _ in range(100):
                if path.exists() and path.read_text():
                    break
                await asyncio.sleep(0.02)
            total.update(json.loads(path.read_text()))
        return total

    def start_profiling(self, label: str) -> list[subprocess.Popen]:
        """py-spy on every process (raw stacks, idle excluded) until stop_profiling."""
        py_spy = Path(sys.executable).parent / "py-spy"
        return [subprocess.Popen([str(py_spy), "record", "-p", str(process.pid), "-r", "250", "-f", "raw",
                                  "-o", str(self.workdir / f"profile-{i}-{label}.txt")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for i, process in enumerate(self.processes.values())]

    @staticmethod
    def stop_profiling(profilers: list[subprocess.Popen]) -> None:
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # jobs still running (e.g. a broken run): do not leave it behind
                process.kill()
                process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(url: str) -> str:
    """The driver-qualified URL the service uses."""
    from bot.config import Settings

    return Settings(_env_file=None, database_url=url).database_url


def service_env(url: str, api_base: str, redis_url: str | None = None, **settings: str) -> dict:
    """This process's environment with the service pointed at the database and the emulator.

    Without redis_url the embedded KV; WECOM_API_CALLS_PER_MINUTE is the service's default unless given.
    """
    from bot.config import (
        EMULATOR_AES_KEY,
        EMULATOR_AGENT_ID,
        EMULATOR_CORP_ID,
        EMULATOR_SECRET,
        EMULATOR_TOKEN,
    )

    env = {**os.environ, "DATABASE_URL": url, "WECOM_CORP_ID": EMULATOR_CORP_ID,
           "WECOM_AGENT_ID": str(EMULATOR_AGENT_ID), "WECOM_SECRET": EMULATOR_SECRET, "WECOM_TOKEN": EMULATOR_TOKEN,
           "WECOM_ENCODING_AES_KEY": EMULATOR_AES_KEY, "WECOM_API_BASE_URL": api_base,
           "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    env.pop("WECOM_API_CALLS_PER_MINUTE", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return {**env, **settings}


async def fresh_database(url: str, redis_url: str | None) -> None:
    """PostgreSQL: the database dropped and made again, Redis flushed; then the migrations."""
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


async def start_wecom(scanned: list[tuple[str, str]], on_deliver=None, kf_accounts: tuple[str, ...] = ()):
    """The WeCom emulator in this process (its CPU is not the service's) knowing the seeded guides.

    on_deliver(channel, message) sees every message delivered to a customer. (state, runner, api_base).
    """
    from bot.emulator import EmulatorState, start_emulator

    state = EmulatorState(record_limit=10**6)
    if on_deliver is not None:
        original_deliver = state.deliver

        def watched_deliver(channel, **message):
            on_deliver(channel, message)
            return original_deliver(channel, **message)

        state.deliver = watched_deliver
    for userid, _ in scanned:
        state.add_member(userid)
    for kf in kf_accounts:
        state.add_kf_account(kf)
    emulator, api_base = await start_emulator(state)
    return state, emulator, api_base


async def fresh_world(url: str, redis_url: str | None, on_deliver=None, kf_accounts: tuple[str, ...] = ()):
    """A fresh, migrated, seeded database and the emulator knowing its guides (see start_wecom).

    (scanned: the (userid, contact way state) pairs, state, runner, api_base).
    """
    await fresh_database(url, redis_url)
    scanned = await seed(url)
    return (scanned, *await start_wecom(scanned, on_deliver, kf_accounts))


def welcome_clock(clock) -> tuple[dict, object]:
    """({customer: clock() when their first welcome arrived}, the on_deliver that records it)."""
    arrived: dict[str, float] = {}

    def record(channel, message):
        if channel == "welcome":
            arrived.setdefault(message.get("to"), clock())

    return arrived, record


def callback_driver(state, http, port: int, **options):
    """Posts WeCom's encrypted, signed callbacks to the web process on port."""
    from bot.config import EMULATOR_AES_KEY, EMULATOR_CORP_ID, EMULATOR_TOKEN
    from bot.emulator import EmulatorDriver
    from bot.wecom.crypto import CallbackCrypto

    crypto = CallbackCrypto(EMULATOR_TOKEN, EMULATOR_AES_KEY, EMULATOR_CORP_ID)
    return EmulatorDriver(state, f"http://127.0.0.1:{port}/wecom/callback", crypto, http, **options)


async def wait_healthy(http, port: int, timeout: float = 60) -> None:
    """Until the web process on port answers /healthz with 200."""
    import aiohttp

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                if answer.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"the web process on port {port} did not come up")


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


async def no_jobs(url: str) -> bool:
    return await jobs_left(url) == 0


if __name__ == "__main__" and sys.argv[1:2] == ["--as-service"]:
    sys.path.insert(0, str(ROOT))
    run_as_service(sys.argv[2:])
