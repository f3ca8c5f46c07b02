"""Public pages of the aggregated QR codes (landing page, locate, QR images)."""

from aiohttp import web


def setup_routes(app: web.Application) -> None:
    return None
