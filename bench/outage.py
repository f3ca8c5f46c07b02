"""Faults during a burst of customer adds: does the service lose or double any work?

    .venv/bin/python bench/outage.py [--adds 500] [--rate 50] [--outage 10] [--at 3]
        [--scenarios redis,postgres,kill-worker,kill-web] [--retry-interval 5]

Starts a private PostgreSQL (initdb in a temp dir, free port) and a private Redis (free port) —
never the machine's shared ones — then the service as real processes (`wecom-assistant serve
--no-jobs` and `wecom-assistant worker`) against a WeCom emulator hosted in this process. Each
scenario posts --adds encrypted `add_external_contact` callbacks open loop at --rate, like WeCom
(3 tries per callback, --retry-interval apart, 5 s timeout each), and --at seconds into the burst:

    redis        Redis shut down for --outage seconds, then started again (empty: --save "")
    postgres     PostgreSQL `pg_ctl stop -m fast` for --outage seconds, then started again
    kill-worker  kill -9 of the worker, started again at once
    kill-web     kill -9 of the web process, started again at once

then waits until every welcome arrived or no job is left, and counts: callbacks answered 200 (and
how many attempts got a 503 or no answer), callbacks never answered 200 (WeCom drops them), inbox
rows, welcomes delivered (and customers welcomed twice), welcome codes that expired unsent, dead
and expired jobs, and jobs that completed twice (each service process appends every job outcome to
a file, unbuffered, so a kill -9 loses none). Prints a table; --json writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _load as load  # noqa: E402  (bench/ is not a package)
import _service as harness  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SCENARIOS = ("redis", "postgres", "kill-worker", "kill-web")


def as_postgres(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: run its tools as the postgres user when we are root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + argv, check=True, capture_output=True, **kwargs)


class PrivateServers:
    """A PostgreSQL and a Redis of our own, in a temp dir; stop() always takes both down."""

    def __init__(self, workdir: Path) -> None:
        self.pg_dir, self.pg_port = workdir / "pg", harness.free_port()
        self.redis_port, self.redis_pid = harness.free_port(), workdir / "redis.pid"
        self.redis_log = workdir / "redis.log"
        self.pg_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres")
            shutil.chown(self.pg_dir, "postgres")
        self.postgres_url = f"postgresql://postgres@127.0.0.1:{self.pg_port}/bench_outage"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self) -> None:
        as_postgres([str(PG_BIN / "initdb"), "-D", str(self.pg_dir / "data"), "-U", "postgres", "--auth=trust"])
        self.start_postgres()
        self.start_redis()

    def start_postgres(self) -> None:
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.pg_dir / "data"), "-w", "-l", str(self.pg_dir / "log"),
                     "-o", f"-p {self.pg_port} -k {self.pg_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                     "start"])

    def stop_postgres(self) -> None:
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.pg_dir / "data"), "-w", "-m", "fast", "stop"])

    def start_redis(self) -> None:
        subprocess.run(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(self.redis_pid),
                        "--logfile", str(self.redis_log)], check=True)
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True).stdout:
                return
            time.sleep(0.05)

    def stop_redis(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"], capture_output=True)
        for _ in range(100):
            if not self.redis_pid.exists():
                return
            time.sleep(0.05)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_redis()
        with contextlib.suppress(Exception):
            if (self.pg_dir / "data" / "postmaster.pid").exists():
                self.stop_postgres()


def start_service(env: dict, workdir: Path) -> harness.ServiceProcesses:
    """`serve --no-jobs` ("web") and `worker`, each recording its job outcomes in job-outcomes.txt."""
    outcomes = str(workdir / "job-outcomes.txt")
    service = harness.ServiceProcesses({**env, harness.OUTCOMES_ENV: outcomes}, workdir)
    service.start("web", ["serve", "--no-jobs"])
    service.start("worker", ["worker"])
    return service


def job_outcomes(workdir: Path) -> list[tuple[int, str, str]]:
    path = workdir / "job-outcomes.txt"
    if not path.exists():
        return []
    return [(int(job_id), kind, status) for job_id, kind, status, _ in
            (line.split() for line in path.read_text().splitlines() if line.strip())]


async def scenario_rows(url: str, prefix: str, since: dt.datetime) -> dict:
    """Inbox rows of the burst's customers; the burst's jobs by kind and status."""
    from sqlalchemy import func, select

    from bot.customers.models import CustomerBinding
    from bot.storage import Database
    from bot.storage.models import InboxEvent, Job

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            inbox = dict((await conn.execute(select(InboxEvent.status, func.count()).where(
                InboxEvent.external_user_id.like(f"{prefix}%")).group_by(InboxEvent.status))).all())
            bindings = collections.Counter((await conn.execute(select(CustomerBinding.external_userid).where(
                CustomerBinding.external_userid.like(f"{prefix}%")))).scalars())
            jobs = (await conn.execute(select(Job.id, Job.kind, Job.status, Job.last_error, Job.payload)
                                       .where(Job.created_at >= since))).all()
    finally:
        await db.dispose()
    return {"inbox": inbox, "jobs": jobs, "bindings": bindings}


async def run(args) -> list[dict]:
    import aiohttp

    from bot.storage import utcnow

    workdir = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    print(f"work directory (service logs, job outcomes, PostgreSQL and Redis logs): {workdir}", flush=True)
    servers = PrivateServers(workdir)
    service = emulator = None
    results = []
    try:
        servers.start()
        url = harness.database_url(servers.postgres_url)
        scanned, state, emulator, api_base = await harness.fresh_world(url, servers.redis_url)
        port = harness.free_port()
        spool = str(workdir / "callback-spool.sqlite3")
        env = harness.service_env(url, api_base, servers.redis_url, WECOM_API_CALLS_PER_MINUTE="10000",
                                  PORT=str(port), CALLBACK_SPOOL_PATH=spool)
        service = start_service(env, workdir)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await harness.wait_healthy(http, port)
            driver = harness.callback_driver(state, http, port, retry_interval=args.retry_interval)
            await burst(driver, scanned, "wmWARM", 20, 20)  # imports, token, corp tags, prepared statements
            await settle(state, url, "wmWARM", 20, 60)
            for name in args.scenarios:
                results.append(await scenario(name, args, driver, state, scanned, service, servers, url, http,
                                              port, workdir, utcnow))
                print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    finally:
        if service is not None:
            service.stop()
        if emulator is not None:
            await emulator.cleanup()
        servers.stop()
    return results


async def burst(driver, scanned, prefix: str, count: int, rate: float) -> list[dict]:
    """count adds at rate per second, open loop, each retried like WeCom; the driver's results."""

    def add(i: int):
        userid, way_state = scanned[i % len(scanned)]
        return driver.customer_adds_guide(f"{prefix}{i:06d}", userid, way_state, f"客户{i}")

    _, results = await load.open_loop(count, rate, add)
    return results


def welcomed(state, prefix: str) -> collections.Counter:
    return collections.Counter(m["to"] for m in list(state.outbox)
                               if m["channel"] == "welcome" and m["to"].startswith(prefix))


async def settle(state, url: str, prefix: str, expected: int, timeout: float) -> float:
    """Until every welcome arrived, or no job is due and nothing changed for 5 s; the seconds waited."""
    started = time.monotonic()
    quiet_since, last = None, None
    while time.monotonic() - started < timeout:
        got = len(welcomed(state, prefix))
        left = await harness.jobs_left(url)
        if got >= expected and left == 0:
            break
        now = (got, left)
        if left == 0 and now == last:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 5:
                break
        else:
            quiet_since = None
        last = now
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def scenario(name, args, driver, state, scanned, service, servers, url, http, port, workdir, utcnow) -> dict:
    prefix = "wm" + name.replace("-", "").upper()[:8]  # unique per scenario: kill-worker, kill-web
    since, callbacks_before = utcnow(), len(state.callbacks)
    outcomes_before = len(job_outcomes(workdir))
    calls_before = len(state.calls)

    async def fault() -> dict:
        await asyncio.sleep(args.at)
        started = time.monotonic()
        if name == "redis":
            await asyncio.to_thread(servers.stop_redis)
            await asyncio.sleep(args.outage)
            await asyncio.to_thread(servers.start_redis)
        elif name == "postgres":
            await asyncio.to_thread(servers.stop_postgres)
            await asyncio.sleep(args.outage)
            await asyncio.to_thread(servers.start_postgres)
        elif name == "kill-worker":
            service.kill_and_restart("worker")
        elif name == "kill-web":
            service.kill_and_restart("web")
            await harness.wait_healthy(http, port)
        return {"fault_s": round(time.monotonic() - started, 1)}

    posting = time.monotonic()
    fault_task = asyncio.create_task(fault())
    answers = await burst(driver, scanned, prefix, args.adds, args.rate)
    posting = time.monotonic() - posting
    fault_info = await fault_task
    waited = await settle(state, url, prefix, args.adds, args.settle)

    attempts = [c for c in list(state.callbacks)[callbacks_before:]]
    statuses = collections.Counter(str(c["status"]) for c in attempts)
    rows = await scenario_rows(url, prefix, since)
    jobs = rows["jobs"]
    kinds = collections.Counter((kind, status) for _, kind, status, _, _ in jobs)
    welcome_jobs = {payload.get("external_userid"): (status, error) for _, kind, status, error, payload in jobs
                    if kind == "customers.welcome"}
    got = welcomed(state, prefix)
    unwelcomed = [f"{prefix}{i:06d}" for i in range(args.adds) if f"{prefix}{i:06d}" not in got]
    completions = collections.Counter(job_id for job_id, _, status in job_outcomes(workdir)[outcomes_before:]
                                      if status == "done")
    welcome_calls = collections.Counter(c["errcode"] for c in list(state.calls)[calls_before:]
                                        if c["path"] == "externalcontact/send_welcome_msg")
    tagged = collections.Counter(c["body"].get("external_userid") for c in list(state.calls)[calls_before:]
                                 if c["path"] == "externalcontact/mark_tag" and c["errcode"] == 0
                                 and str(c["body"].get("external_userid", "")).startswith(prefix))
    return {
        "scenario": name, "adds": args.adds, "posting_s": round(posting, 1), **fault_info,
        "settle_s": round(waited, 1),
        "answered_200": sum(1 for a in answers if a["http_status"] == 200),
        "never_200": sum(1 for a in answers if a["http_status"] != 200),
        "attempts": dict(statuses), "tries_503": statuses.get("503", 0), "tries_unanswered": statuses.get("None", 0),
        "inbox_rows": sum(rows["inbox"].values()), "inbox_by_status": rows["inbox"],
        "bindings": len(rows["bindings"]), "bound_twice": sum(1 for n in rows["bindings"].values() if n > 1),
        "tagged_twice": sum(1 for n in tagged.values() if n > 1),
        "welcomed": len(got), "welcomed_twice": sum(1 for n in got.values() if n > 1),
        "welcome_code_used_again": welcome_calls.get(41051, 0),
        "unwelcomed": len(unwelcomed),
        "expired": sum(1 for who in unwelcomed if welcome_jobs.get(who, ("",))[0] == "expired"),
        "unwelcomed_by_job": dict(collections.Counter(
            welcome_jobs.get(who, ("no job", None))[0] for who in unwelcomed)),
        "unwelcomed_examples": {who: welcome_jobs.get(who) for who in unwelcomed[:3]},
        "dead_jobs": sum(n for (_, status), n in kinds.items() if status == "dead"),
        "expired_jobs": dict(collections.Counter(kind for (kind, status), n in kinds.items()
                                                 for _ in range(n) if status == "expired")),
        "jobs_left": sum(n for (_, status), n in kinds.items() if status in ("queued", "running")),
        "jobs_done_twice": sum(1 for n in completions.values() if n > 1),
    }


def table(results: list[dict]) -> str:
    columns = [("scenario", "scenario"), ("answered_200", "200"), ("never_200", "never 200"),
               ("tries_503", "503 tries"), ("tries_unanswered", "unanswered tries"),
               ("inbox_rows", "inbox"), ("bindings", "bound"), ("welcomed", "welcomed"),
               ("welcomed_twice", "welcomed twice"), ("unwelcomed", "unsent"), ("expired", "code expired"), ("dead_jobs", "dead"),
               ("jobs_done_twice", "jobs run twice"), ("bound_twice", "bound twice"),
               ("tagged_twice", "tagged twice"), ("settle_s", "settle s")]
    lines = [" | ".join(title for _, title in columns)]
    for result in results:
        lines.append(" | ".join(str(result[key]) for key, _ in columns))
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="add events per second (open loop)")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds Redis / PostgreSQL stay down")
    parser.add_argument("--at", type=float, default=3.0, help="seconds into the burst the fault starts")
    parser.add_argument("--retry-interval", type=float, default=5.0,
                        help="seconds between WeCom's tries of an unanswered callback (unconfirmed by WeCom)")
    parser.add_argument("--settle", type=float, default=180.0, help="at most this long for the queue to drain")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


if __name__ == "__main__":
    print("$", shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    arguments = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    measured = asyncio.run(run(arguments))
    print(table(measured))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(measured, ensure_ascii=False, indent=1))
