"""Run the emulator: standalone (`python -m bot.emulator`, the CLI) or inside another asyncio program."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .app import create_emulator_app
from .state import EmulatorState


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without query strings: they carry access_token and corpsecret."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, request.path, response.status, time * 1000)


def run_emulator(
    host: str = "127.0.0.1",
    port: int = 8090,
    *,
    callback_url: str | None = None,
    state: EmulatorState | None = None,
) -> None:
    """Serve until interrupted; point WECOM_API_BASE_URL at http://host:port/cgi-bin/."""
    web.run_app(
        create_emulator_app(state, callback_url=callback_url),
        host=host,
        port=port,
        access_log_class=PathOnlyAccessLogger,
    )


async def start_emulator(
    state: EmulatorState | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    callback_url: str | None = None,
) -> tuple[web.AppRunner, str]:
    """Start in the running loop; returns the runner (call `cleanup()` to stop) and the API base URL."""
    runner = web.AppRunner(
        create_emulator_app(state, callback_url=callback_url), access_log_class=PathOnlyAccessLogger
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, f"http://{host}:{bound_port}/cgi-bin/"
