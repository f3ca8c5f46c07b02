"""Imports every model module so Base.metadata knows all tables (for Alembic and tests)."""

import bot.storage.models  # noqa: F401
from bot.storage.models import Base

metadata = Base.metadata
