"""Callback intake throughput and acknowledgement latency, against a bare aiohttp baseline.

    .venv/bin/python bench/callback_throughput.py [--backend embedded|postgres] [--requests N]

Each server runs in its own process; this process is the load generator. Every request is a
distinct, encrypted `add_external_contact` event (sealed before timing starts), so the service does
the full intake: verify signature and timestamp, decrypt, parse, dedupe, write the inbox row and its
dispatch job, answer. The baseline is an aiohttp handler that only reads the body.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time

import aiohttp
from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bot.wecom.crypto import CallbackCrypto  # noqa: E402

TOKEN, AES_KEY, CORP_ID = "benchtoken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wwbench"
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_bare(port: int) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    app = web.Application()
    app.router.add_post("/wecom/callback", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_service(port: int, database_url: str, redis_url: str | None) -> None:
    import logging

    from bot.app import create_app
    from bot.config import Settings

    logging.disable(logging.WARNING)
    settings = Settings(
        _env_file=None, database_url=database_url, redis_url=redis_url, wecom_corp_id=CORP_ID,
        wecom_agent_id=1, wecom_secret="s", wecom_token=TOKEN, wecom_encoding_aes_key=AES_KEY,
    )
    # Intake only: in production the job workers are separate processes.
    web.run_app(create_app(settings, run_jobs=False, migrate=True), host="127.0.0.1", port=port,
                print=None, access_log=None)


def sealed_events(count: int, offset: int) -> list[dict]:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    now = int(time.time())
    return [
        crypto.seal(
            f"<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>sys</FromUserName><CreateTime>{now}"
            "</CreateTime><MsgType>event</MsgType><Event>change_external_contact</Event>"
            "<ChangeType>add_external_contact</ChangeType><UserID>guide01</UserID>"
            f"<ExternalUserID>wmBench{offset + i:08d}</ExternalUserID><State>c1s1</State>"
            f"<WelcomeCode>WC{offset + i}</WelcomeCode></xml>"
        )
        for i in range(count)
    ]


async def wait_until_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.post(url, data=b"<xml/>"):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def closed_loop(url: str, events: list[dict], concurrency: int) -> float:
    """Requests/s with `concurrency` requests always in flight."""
    queue = iter(events)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker():
            for event in queue:
                async with session.post(url, params=event["params"], data=event["body"]) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(events) / (time.perf_counter() - started)


async def open_loop(url: str, events: list[dict], rate: float) -> list[float]:
    """Send at a fixed offered rate regardless of answers; return each acknowledgement latency."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(event):
            started = time.perf_counter()
            async with session.post(url, params=event["params"], data=event["body"]) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            latencies.append(time.perf_counter() - started)

        tasks, start = [], time.perf_counter()
        for i, event in enumerate(events):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(event)))
        await asyncio.gather(*tasks)
    return latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def measure(url: str, requests: int, concurrency: int, rate: float, seconds: float, offset: int) -> dict:
    await wait_until_up(url)
    await closed_loop(url, sealed_events(200, offset), concurrency)  # warm up
    throughput = await closed_loop(url, sealed_events(requests, offset + 1_000_000), concurrency)
    latencies = await open_loop(url, sealed_events(int(rate * seconds), offset + 2_000_000), rate)
    return {"rps": throughput, "p99_ms": p99(latencies) * 1000, "p50_ms": statistics.median(latencies) * 1000}


def start(target, *args) -> multiprocessing.Process:
    process = multiprocessing.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def reset_postgres() -> None:
    import asyncpg

    async def run():
        conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
        await conn.execute("DROP SCHEMA public CASCADE")
        await conn.execute("CREATE SCHEMA public")
        await conn.close()

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["embedded", "postgres"], default="embedded")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print("command:", "python bench/callback_throughput.py " + " ".join(sys.argv[1:]))

    if args.backend == "embedded":
        workdir = tempfile.mkdtemp()
        database_url, redis_url = f"sqlite+aiosqlite:///{workdir}/bench.db", None
    else:
        reset_postgres()
        database_url, redis_url = PG_URL, REDIS_URL

    results = {}
    for name, target, extra in [("bare aiohttp", serve_bare, ()),
                                ("service intake", serve_service, (database_url, redis_url))]:
        port = free_port()
        process = start(target, port, *extra)
        try:
            results[name] = asyncio.run(measure(f"http://127.0.0.1:{port}/wecom/callback", args.requests,
                                                args.concurrency, args.rate, args.seconds, len(results) * 10**7))
        finally:
            process.terminate()
            process.join()

    print(f"backend: {args.backend}; {args.requests} requests at concurrency {args.concurrency}; "
          f"open loop {args.rate:.0f}/s for {args.seconds:.0f}s; {os.cpu_count()} cores")
    print(f"{'':16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        print(f"{name:16} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
    ratio = results["service intake"]["rps"] / results["bare aiohttp"]["rps"]
    print(f"ratio service/bare: {ratio:.2f}  (goal >= 0.5); service p99 at {args.rate:.0f}/s: "
          f"{results['service intake']['p99_ms']:.1f} ms (goal <= 50)")


if __name__ == "__main__":
    main()
