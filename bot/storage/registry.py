"""Imports every model module so Base.metadata knows all tables (for Alembic and tests)."""

import bot.api.audit  # noqa: F401
import bot.console.models  # noqa: F401
import bot.customers.models  # noqa: F401
import bot.customers.tag_mirror_models  # noqa: F401
import bot.members.models  # noqa: F401
import bot.storage.models  # noqa: F401
import bot.stores.models  # noqa: F401
import sop.campaigns.models  # noqa: F401
import sop.engine.models  # noqa: F401
import sop.outreach.models  # noqa: F401
from bot.storage.models import Base

metadata = Base.metadata
