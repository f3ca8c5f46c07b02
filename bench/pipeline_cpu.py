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
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _load as load  # noqa: E402  (bench/ is not a package)
import _service as harness  # noqa: E402

KF = "wkBENCH"
PROFILE = False  # --profile: py-spy stacks of the service processes for each measured phase


def start_service(env: dict, postgres: bool, workdir: Path) -> harness.ServiceProcesses:
    """`serve` (embedded), or `serve --no-jobs` and `worker`, with statement counters (counts-<i>.json)."""
    service = harness.ServiceProcesses(env, workdir, counts="counts-{}.json")
    commands = [["serve", "--no-jobs"], ["worker"]] if postgres else [["serve"]]
    for i, command in enumerate(commands):
        service.start(f"service-{i}", command)
    return service


async def measure(service: harness.ServiceProcesses, state, url: str, label: str, events: int, run, done,
                  latencies) -> dict:
    """Run, then wait until `done()` (every answer delivered) or the queue is empty (some never will be)."""
    calls_before, counts_before, cpu_before = len(state.calls), await service.counts(), service.cpu_seconds()
    profilers = service.start_profiling(label.split()[1]) if PROFILE else []
    wall = time.perf_counter()
    posting = await run()

    async def finished() -> bool:
        return await done() or await harness.no_jobs(url)

    await load.wait_until(finished, 300 + events, label)
    await load.wait_until(lambda: harness.no_jobs(url), 300, f"{label}: jobs to finish")
    wall = time.perf_counter() - wall
    cpu = service.cpu_seconds() - cpu_before
    service.stop_profiling(profilers)
    counts = await service.counts()
    counts.subtract(counts_before)
    calls = collections.Counter(call["path"] for call in list(state.calls)[calls_before:])
    result = {"what": label, "events": events, "posting_s": round(posting, 1), "wall_s": round(wall, 1),
              "cpu_s": round(cpu, 2), "cpu_ms_per_event": round(cpu * 1000 / events, 2),
              "delivered": len(latencies()), "latency_ms": load.percentiles(latencies()),
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


async def main(args) -> list[dict]:
    import aiohttp

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    print(f"work directory (database, service logs, statements by text in counts-*.json.sql): {workdir}")
    postgres = bool(args.postgres)
    url = args.postgres or f"sqlite:///{workdir}/bench.db"
    url = harness.database_url(url)
    delivered, sent_at, arrived_at = collections.Counter(), {}, {}

    def count_delivery(channel, message):
        delivered[channel] += 1
        arrived_at.setdefault((channel, message.get("to")), time.perf_counter())

    def latencies(channel: str, prefix: str) -> list[float]:
        return [(arrived_at[(channel, who)] - at) * 1000 for who, at in sent_at.items()
                if who.startswith(prefix) and (channel, who) in arrived_at]

    scanned, state, emulator, api_base = await harness.fresh_world(url, args.redis, count_delivery, (KF,))
    port = harness.free_port()
    env = harness.service_env(url, api_base, args.redis, WECOM_API_CALLS_PER_MINUTE="10000", PORT=str(port),
                              MEMBERS_JOIN_BONUS_POINTS="100")
    service = start_service(env, postgres, workdir)
    rng = random.Random(args.seed)
    results = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await harness.wait_healthy(http, port)
            driver = harness.callback_driver(state, http, port)

            def adds(prefix: str, count: int, rate: float):
                async def add(i: int) -> dict:
                    userid, way_state = rng.choice(scanned)
                    sent_at[f"wm{prefix}{i:06d}"] = time.perf_counter()
                    return await driver.customer_adds_guide(f"wm{prefix}{i:06d}", userid, way_state, f"客户{i}")

                async def run() -> float:
                    return await load.open_loop_all_answered(count, rate, add)

                return run

            async def all_welcomed(target: int) -> bool:
                return delivered["welcome"] >= target

            # Warm-up: imports, caches, token, corp tags, prepared statements.
            await adds("W", 20, 20)()
            await load.wait_until(lambda: all_welcomed(20), 60, "warm-up welcomes")
            await load.wait_until(lambda: harness.no_jobs(url), 60, "warm-up jobs")
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
                return await load.open_loop_all_answered(len(askers), args.question_rate, ask)

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
    print("$", shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    arguments = parse_args()
    PROFILE = arguments.profile
    measured = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(measured, ensure_ascii=False, indent=1))
