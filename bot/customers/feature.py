"""What the customers feature adds to the service: the welcome and profile jobs of a new binding,
the tag mirror, guide handover, the customers API, and the guides' PK board (ranked by their
customers' adds and losses, with its nightly tally)."""

from bot.api.spec import declared_routes
from bot.customers import (
    api,
    api_board,
    api_handover,
    api_tags,
    board,
    board_models,
    followup,
    models,
    tag_mirror,
    tag_mirror_models,
)
from bot.jobs.registry import declared_jobs
from bot.wiring import Feature

FEATURE = Feature(
    "customers",
    routes=declared_routes(api_handover, api, api_tags, api_board),
    jobs=declared_jobs(followup, tag_mirror, board),
    cron=[board.BOARD_TALLY_CRON],
    models=[models, tag_mirror_models, board_models],
)
