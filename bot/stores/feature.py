"""What the stores feature adds to the service: stores, guides, channels, QR codes, their
statistics (with the PK board's nightly tally), the customers' landing page and `wecom-assistant import`."""

from bot.api.spec import declared_routes
from bot.jobs.registry import declared_jobs
from bot.stores import api, api_codes, board, cli, models, stats, web
from bot.wiring import Feature

FEATURE = Feature(
    "stores",
    routes=declared_routes(api_codes, stats, api),
    jobs=declared_jobs(board),
    cron=[board.BOARD_TALLY_CRON],
    models=[models],
    pages=[web.setup_routes],
    commands=[cli.import_group],
)
