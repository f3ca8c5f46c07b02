"""Scale-out of the add pipeline: N web processes and N workers on PostgreSQL + Redis.

    .venv/bin/python bench/scaleout.py [--max-n CORES] [--rate 100] [--seconds 10] \
        [--postgres postgresql://postgres@127.0.0.1:5432/bench_scaleout] [--redis redis://127.0.0.1:6379/12]

For N = 1, 2, 4, … up to --max-n (default: this machine's cores; any N works, each is run as given):
a fresh database, N `wecom-assistant serve --no-jobs` processes (each on its own port) and N
`worker` processes, then --rate × N encrypted `add_external_contact` callbacks a second for
--seconds, open loop, spread round-robin over the web processes (a load balancer's job). This
process hosts the WeCom emulator (its CPU is not counted). Reported per N: end-to-end adds/s (adds
whose welcome arrived ÷ seconds from the first callback to the last welcome), intake p50/p99 (the
callback POST until its 200), welcome p50/p99 (the POST until `send_welcome_msg` reaches the
emulator), welcomes delivered, and the service processes' CPU ms per add. The pieces (seed,
emulator set-up, waiting) are bench/pipeline_cpu.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


def process_counts(max_n: int) -> list[int]:
    counts, n = [], 1
    while n < max_n:
        counts.append(n)
        n *= 2
    return counts + [max_n]


def start_processes(env: dict, n: int, workdir: Path) -> tuple[harness.ServiceProcesses, list[int]]:
    """N web processes (one port each) and N workers, with statement counters; and the web ports."""
    service = harness.ServiceProcesses(env, workdir, counts=f"n{n}-counts-{{}}.json")
    ports = [harness.free_port() for _ in range(n)]
    commands = [(["serve", "--no-jobs"], {"PORT": str(port)}) for port in ports]
    commands += [(["worker"], {}) for _ in range(n)]
    for i, (command, extra) in enumerate(commands):
        service.start(f"n{n}-{i}-{command[0]}", command, **extra)
    return service, ports


async def run_n(args, n: int, workdir: Path) -> dict:
    import aiohttp

    url = harness.database_url(args.postgres)
    welcomed_at, time_welcome = harness.welcome_clock(time.perf_counter)
    scanned, state, emulator, api_base = await harness.fresh_world(url, args.redis, time_welcome)
    env = harness.service_env(url, api_base, args.redis, WECOM_API_CALLS_PER_MINUTE="100000",
                              MEMBERS_JOIN_BONUS_POINTS="100")
    service, ports = start_processes(env, n, workdir)
    rng = random.Random(args.seed + n)
    posted_at: dict[str, float] = {}
    intake_ms: list[float] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            for port in ports:
                await harness.wait_healthy(http, port)
            drivers = [harness.callback_driver(state, http, port) for port in ports]

            def adds(prefix: str):
                async def add(i: int) -> dict:
                    userid, way_state = rng.choice(scanned)
                    who = f"wm{prefix}{i:06d}"
                    posted_at[who] = started = time.perf_counter()
                    answer = await drivers[i % n].customer_adds_guide(who, userid, way_state, f"客户{i}")
                    if prefix == "B":
                        intake_ms.append((time.perf_counter() - started) * 1000)
                    return answer
                return add

            warm = 10 * n  # imports, tokens, corp tags, prepared statements in every process
            await load.open_loop_all_answered(warm, 20, adds("W"))
            await load.wait_until(lambda: _count(welcomed_at, warm), 60, "warm-up welcomes")
            await load.wait_until(lambda: harness.no_jobs(url), 120, "warm-up jobs")
            total, rate = int(args.rate * n * args.seconds), args.rate * n
            cpu_before = service.cpu_seconds()
            first_post = time.perf_counter()
            await load.open_loop_all_answered(total, rate, adds("B"))

            async def finished() -> bool:
                return await _count(welcomed_at, warm + total) or await harness.no_jobs(url)

            await load.wait_until(finished, 300 + total / 10, f"N={n}: welcomes")
            await load.wait_until(lambda: harness.no_jobs(url), 300, f"N={n}: jobs to finish")
            cpu = service.cpu_seconds() - cpu_before
    finally:
        service.stop()
        await emulator.cleanup()
    welcome_ms = [(welcomed_at[who] - at) * 1000 for who, at in posted_at.items()
                  if who.startswith("wmB") and who in welcomed_at]
    last_welcome = max((welcomed_at[who] for who in posted_at if who.startswith("wmB") and who in welcomed_at),
                       default=first_post)
    return {"n": n, "offered_per_s": rate, "adds": total, "welcomed": len(welcome_ms),
            "adds_per_s": round(len(welcome_ms) / max(1e-9, last_welcome - first_post), 1),
            "intake_ms": load.percentiles(intake_ms), "welcome_ms": load.percentiles(welcome_ms),
            "cpu_ms_per_add": round(cpu * 1000 / total, 2)}


async def _count(arrived: dict, target: int) -> bool:
    return len(arrived) >= target


async def main(args) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    print(f"work directory (service logs): {workdir}", flush=True)
    results = []
    for n in args.n or process_counts(args.max_n):
        result = await run_n(args, n, workdir)
        print(json.dumps(result, ensure_ascii=False), flush=True)
        results.append(result)
    print("\n| N | offered adds/s | welcomed | end-to-end adds/s | intake p50 / p99 | welcome p50 / p99 | CPU ms/add |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['n']} | {r['offered_per_s']:g} | {r['welcomed']} / {r['adds']} | {r['adds_per_s']} | "
              f"{r['intake_ms']['p50']} / {r['intake_ms']['p99']} ms | "
              f"{r['welcome_ms']['p50']} / {r['welcome_ms']['p99']} ms | {r['cpu_ms_per_add']} |")
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=os.cpu_count() or 1,
                        help="largest N (web processes = workers = N); N = 1, 2, 4, … up to it")
    parser.add_argument("--n", type=int, action="append", help="run just this N (repeatable)")
    parser.add_argument("--rate", type=float, default=100.0, help="add events per second per web process")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/bench_scaleout",
                        help="PostgreSQL URL (its database is dropped and re-made for every N)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="Redis URL (flushed for every N)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args()


if __name__ == "__main__":
    print("$", shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    arguments = parse_args()
    if arguments.max_n < 1:
        raise SystemExit("--max-n must be at least 1")
    measured = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(measured, ensure_ascii=False, indent=1))
