"""Offering load and reading it back, shared by the bench scripts: open loop, waiting, percentiles."""

from __future__ import annotations

import asyncio
import time


async def open_loop(count: int, rate: float, act) -> tuple[float, list]:
    """Start act(i) at i/rate seconds (like WeCom, not waiting for answers); (seconds it took, results)."""
    started, tasks = time.perf_counter(), []
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(act(i)))
    results = await asyncio.gather(*tasks)
    return time.perf_counter() - started, results


async def open_loop_all_answered(count: int, rate: float, act) -> float:
    """As open_loop, for callbacks that must all be answered 200; the seconds it took."""
    seconds, results = await open_loop(count, rate, act)
    bad = [r for r in results if r.get("http_status") != 200]
    if bad:
        raise SystemExit(f"{len(bad)} callbacks not answered 200, e.g. {bad[0]}")
    return seconds


async def wait_until(predicate, timeout: float, what: str) -> None:
    """Until `await predicate()` holds; SystemExit after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


def percentiles(values: list[float], digits: int = 1) -> dict:
    ordered = sorted(values) or [float("nan")]
    return {f"p{q}": round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], digits) for q in (50, 99)}
