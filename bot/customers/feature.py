"""What the customers feature adds to the service: the welcome of an add (bot/customers/welcome.py),
the enrichment of new bindings (profile, tags, the benefit), the tag mirror, guide handover, the
customers API, the guides' PK board (ranked by their customers' adds and losses, with its nightly
tally), and the count of a guide's adds that the stores' guide picker asks for."""

from bot.api.spec import declared_routes
from bot.customers import (
    api,
    api_board,
    api_handover,
    api_tags,
    binding,
    board,
    board_models,
    enrich,
    models,
    tag_mirror,
    tag_mirror_models,
    welcome,
)
from bot.jobs.registry import declared_jobs
from bot.stores.assign import GUIDE_ADDS_SINCE
from bot.wiring import Feature

FEATURE = Feature(
    "customers",
    routes=declared_routes(api_handover, api, api_tags, api_board),
    jobs=declared_jobs(welcome, enrich, tag_mirror, board),
    cron=[board.BOARD_TALLY_CRON],
    models=[models, tag_mirror_models, board_models],
    # The stores' guide picker counts a guide's adds of the day in the bindings kept here.
    provides={GUIDE_ADDS_SINCE: binding.guide_adds_since},
)
