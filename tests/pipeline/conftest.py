"""Fixtures for the customer-add pipeline tests (the `world` fixture comes from tests/conftest.py)."""

from __future__ import annotations

import asyncio
import time

import pytest


async def until(check, within: float = 10.0, interval: float = 0.05):
    """Poll an async check until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)
    return value


@pytest.fixture
def guide(world) -> str:
    world.emulator.add_member("guide1", "王导购")
    return "guide1"
