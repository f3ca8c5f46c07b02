"""The built-in WeCom emulator that `serve` starts when no WeCom credentials are configured."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.config import Settings
from bot.emulator import EmulatorState, start_emulator


@dataclass
class EmbeddedEmulator:
    runner: web.AppRunner
    state: EmulatorState
    api_base_url: str  # …/cgi-bin/, what WECOM_API_BASE_URL would be

    @property
    def base_url(self) -> str:
        return self.api_base_url.removesuffix("cgi-bin/")

    def attach(self, services) -> None:
        """Post the emulated corp's callbacks to this service."""
        if self.state.callback_url is None:
            self.state.callback_url = f"http://127.0.0.1:{services.settings.port}/wecom/callback"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_embedded_emulator(settings: Settings) -> EmbeddedEmulator:
    state = EmulatorState(group_send_cap_per_month=settings.wecom_group_send_cap_per_month)
    runner, api_base_url = await start_emulator(state, host="127.0.0.1", port=settings.emulator_port)
    return EmbeddedEmulator(runner, state, api_base_url)
