"""The embedded default under a burst: one `serve` process (SQLite + in-process KV + its job runner).

    .venv/bin/python bench/embedded_burst.py [--rate 200] [--seconds 60] [--wecom-limit 10000] [--align]

This process hosts the WeCom emulator (its CPU is not counted) and posts encrypted, signed
`add_external_contact` callbacks open loop at --rate for --seconds, each a new customer scanning
one of 100 guides' contact ways (as bench/pipeline_cpu.py). The emulator enforces WeCom's per-API
limit (--wecom-limit calls per API per wall-clock minute, errcode 45009; 0 = off) and the service
runs with its default WECOM_API_CALLS_PER_MINUTE. --align starts the burst at the start of a
wall-clock minute: 200/s then offers 12,000 welcomes to one minute's 10,000 calls (the worst case
for a minute-counted limit); without it the burst falls wherever the clock is.

Reports: callback answer time (intake) p50/p99 during the burst; welcome latency (callback sent →
welcome at the emulator) p50/p99 and how many within 20 s; welcomes sent per second of the
minutes over the limit; 45009 answers; welcome codes the service let expire unsent (its metric);
backlog drain time (last callback → no job left); CPU per add of the service process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _load as load  # noqa: E402  (bench/ is not a package)
import _service as harness  # noqa: E402

WELCOME = "externalcontact/send_welcome_msg"
WELCOME_SECONDS = 20


async def main(args) -> dict:
    import aiohttp

    workdir = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    print(f"work directory (database, service log): {workdir}", flush=True)
    url = harness.database_url(f"sqlite:///{workdir}/bench.db")
    arrived_at, record_welcome = harness.welcome_clock(time.time)
    scanned, state, emulator, api_base = await harness.fresh_world(url, None, record_welcome)
    port = harness.free_port()
    settings = {"PORT": str(port), "MEMBERS_JOIN_BONUS_POINTS": "100"}  # the embedded default: no Redis
    if args.wecom_limit and args.wecom_limit != 10_000:  # the service's default (10,000), unless told
        settings["WECOM_API_CALLS_PER_MINUTE"] = str(args.wecom_limit)  # a scaled-down WeCom: the same limit
    env = harness.service_env(url, api_base, **settings)
    service = harness.ServiceProcesses(env, workdir, counts="counts-{}.json")
    service.start("service-0", ["serve"])
    rng = random.Random(args.seed)
    sent_at: dict[str, float] = {}
    intake: list[tuple[float, float]] = []  # (sent, answer seconds)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            base = f"http://127.0.0.1:{port}"
            await harness.wait_healthy(http, port)
            driver = harness.callback_driver(state, http, port)

            async def add(external_userid: str) -> dict:
                userid, way_state = rng.choice(scanned)
                started = time.time()
                sent_at[external_userid] = started
                result = await driver.customer_adds_guide(external_userid, userid, way_state, "客户")
                intake.append((started, time.time() - started))
                return result

            # Warm-up (imports, caches, token, tags), then the emulator's limit goes on.
            warm = [f"wmW{i:04d}" for i in range(20)]
            for i in range(20):
                await add(warm[i])
            await load.wait_until(lambda: _all_in(arrived_at, warm), 60, "warm-up welcomes")
            await load.wait_until(lambda: harness.no_jobs(url), 60, "warm-up jobs")
            state.rate_limit_per_minute = args.wecom_limit or None
            if args.align:
                await asyncio.sleep(60 - time.time() % 60 + 0.05)

            count = int(args.rate * args.seconds)
            names = [f"wmB{i:06d}" for i in range(count)]
            calls_before, cpu_before = len(state.calls), service.cpu_seconds()
            burst_started = time.time()
            posting, unanswered = await _open_loop(count, args.rate, lambda i: add(names[i]))
            burst_ended = time.time()
            await load.wait_until(lambda: _backlog_gone(url), 600, "the backlog to drain")
            drained = time.time()
            cpu = service.cpu_seconds() - cpu_before
            async with http.get(f"{base}/metrics") as answer:
                metrics = await answer.text()
    finally:
        service.stop()
        await emulator.cleanup()

    calls = list(state.calls)[calls_before:]
    welcome_calls = [call for call in calls if call["path"] == WELCOME]
    sent_ok = sorted(call["time"] for call in welcome_calls if call["errcode"] == 0)
    latencies = [arrived_at[name] - sent_at[name] for name in names if name in arrived_at]
    per_minute = collections.Counter(int(at // 60) for at in sent_ok)
    full_minutes = [minute for minute in per_minute if burst_started <= minute * 60 and (minute + 1) * 60 <= drained]
    over_limit = {str(minute * 60 - int(burst_started // 60) * 60): per_minute[minute] for minute in sorted(per_minute)}
    result = {
        "adds": count, "rate": args.rate, "posting_s": round(posting, 1), "callbacks_never_answered_200": unanswered, "wecom_limit_per_minute": args.wecom_limit,
        "aligned_to_minute": args.align, "burst_started_at_second": round(burst_started % 60, 1),
        "intake_ms": load.percentiles([answer * 1000 for at, answer in intake if at >= burst_started], 2),
        "welcomed": len(latencies), "welcome_s": load.percentiles(latencies, 2),
        "welcomed_within_20s": sum(1 for latency in latencies if latency <= WELCOME_SECONDS),
        "welcome_calls": len(welcome_calls), "answered_45009": sum(1 for c in calls if c["errcode"] == 45009),
        "welcome_codes_expired_unsent": _metric(metrics, "wecom_welcome_codes_expired_total"),
        "welcomes_sent_per_clock_minute": over_limit,
        "welcomes_sent_in_full_minutes": [per_minute[minute] for minute in sorted(full_minutes)],
        "drain_s_after_last_callback": round(drained - burst_ended, 1),
        "cpu_s": round(cpu, 1), "cpu_ms_per_add": round(cpu * 1000 / count, 2),
    }
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return result


async def _open_loop(count: int, rate: float, act) -> tuple[float, int]:
    """load.open_loop, but a callback WeCom gave up on (3 tries unanswered) is counted, not fatal."""
    seconds, results = await load.open_loop(count, rate, act)
    return seconds, sum(1 for result in results if result.get("http_status") != 200)


async def _backlog_gone(url: str) -> bool:
    """No job of the adds left, whenever it is due (a welcome deferred to the next minute counts)."""
    from sqlalchemy import func, select

    from bot.storage import Database
    from bot.storage.models import Job

    db = Database(url)
    try:
        async with db.reading() as conn:
            return not await conn.scalar(select(func.count()).select_from(Job).where(
                Job.status.in_(("queued", "running")),
                Job.kind.in_(("inbox.dispatch", "customers.welcome", "customers.enrich"))))
    finally:
        await db.dispose()


async def _all_in(arrived: dict, names: list[str]) -> bool:
    return all(name in arrived for name in names)


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="add events per second (open loop)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--wecom-limit", type=int, default=10_000,
                        help="the emulator's calls per API per minute (WeCom: 10,000; another value is also "
                             "given to the service as WECOM_API_CALLS_PER_MINUTE); 0 = no limit")
    parser.add_argument("--align", action="store_true", help="start the burst at a wall-clock minute")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--json", help="also write the result to this file")
    return parser.parse_args()


if __name__ == "__main__":
    print("$", shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    arguments = parse_args()
    measured = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(measured, ensure_ascii=False, indent=1))
