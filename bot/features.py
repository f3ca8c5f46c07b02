"""The service's features, listed in one place: the app, the worker and the CLI compose these.

Order matters where it shows: the dispatcher tries routers in this order, and the OpenAPI
document lists operations in it.
"""

from __future__ import annotations

from functools import cache

import bot.api.audit
import bot.storage.models
from bot.api import operations
from bot.api.spec import declared_routes
from bot.callback import inbox
from bot.console.feature import FEATURE as CONSOLE
from bot.customers.feature import FEATURE as CUSTOMERS
from bot.jobs import retention
from bot.members.feature import FEATURE as MEMBERS
from bot.stores.feature import FEATURE as STORES
from bot.wiring import Feature, Wiring
from handlers.feature import FEATURE as HANDLERS
from sop.engine.feature import FEATURE as SOP_ENGINE
from sop.feature import FEATURE as SOP

CORE = Feature(
    "core",
    routes=declared_routes(operations),
    jobs=[inbox.dispatch_inbox_event, inbox.dispatch_inbox_group, retention.prune_finished_job],
    cron=[retention.RETENTION_CRON],
    models=[bot.storage.models, bot.api.audit],
)

FEATURES = (CORE, CUSTOMERS, MEMBERS, STORES, CONSOLE, SOP_ENGINE, SOP, HANDLERS)


@cache
def wiring() -> Wiring:
    return Wiring(FEATURES)


# Every table of every feature (the features above import their model modules): for Alembic's
# autogenerate and the tests' schema.
metadata = bot.storage.models.Base.metadata
