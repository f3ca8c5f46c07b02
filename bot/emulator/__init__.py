"""A local WeCom: the server API with WeCom's rules and errcodes, and a driver for its callbacks."""

from .app import create_emulator_app
from .driver import EmulatorDriver
from .server import run_emulator, start_emulator
from .state import EmulatorState
from .world import Clock

__all__ = [
    "Clock",
    "EmulatorDriver",
    "EmulatorState",
    "create_emulator_app",
    "run_emulator",
    "start_emulator",
]
