"""Typed application keys of the emulator app."""

from __future__ import annotations

from aiohttp import web

from .driver import EmulatorDriver
from .state import EmulatorState

STATE = web.AppKey("emulator_state", EmulatorState)
DRIVER = web.AppKey("emulator_driver", EmulatorDriver)
