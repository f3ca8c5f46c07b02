"""The asyncio WeCom client's tests: the emulator, a session, and a client against both."""

from __future__ import annotations

import aiohttp
import pytest

from bot.config import EMULATOR_AGENT_ID, EMULATOR_CORP_ID, EMULATOR_SECRET
from bot.emulator import Clock, EmulatorState, create_emulator_app
from bot.kv import MemoryStore
from bot.wecom.client import WeComClient


@pytest.fixture
def state() -> EmulatorState:
    state = EmulatorState(clock=Clock(start=1_700_000_000.0))
    state.add_member("guide1", "Ann")
    state.add_kf_account("kf1")
    return state


@pytest.fixture
async def emulator(aiohttp_server, state):
    return await aiohttp_server(create_emulator_app(state))


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(session, emulator, kv=None, *, secrets=None, **options) -> WeComClient:
    options = {"backoff": 0.001, "rate_limit_pause": 0, **options}
    return WeComClient(
        session,
        kv or MemoryStore(),
        base_url=str(emulator.make_url("/cgi-bin/")),
        corp_id=EMULATOR_CORP_ID,
        secrets=secrets or {"app": EMULATOR_SECRET},
        agent_id=EMULATOR_AGENT_ID,
        **options,
    )
