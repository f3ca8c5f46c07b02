"""What the stores feature adds to the service: stores, guides, channels, QR codes, the scan
funnel, the customers' landing page and `wecom-assistant import`."""

from bot.api.spec import declared_routes
from bot.stores import api, api_codes, cli, models, stats, web
from bot.wiring import Feature

FEATURE = Feature(
    "stores",
    routes=declared_routes(api_codes, stats, api),
    models=[models],
    pages=[web.setup_routes],
    commands=[cli.import_group],
)
