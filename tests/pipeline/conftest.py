"""Fixtures for the customer-add pipeline tests (the `world` fixture comes from tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def guide(world) -> str:
    world.emulator.add_member("guide1", "王导购")
    return "guide1"
