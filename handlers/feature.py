"""The routers for inbound WeCom traffic (one per kind) and the jobs they own."""

from bot.jobs.registry import declared_jobs
from bot.wiring import Feature
from handlers import all_routers, guide_commands

FEATURE = Feature("handlers", routers=all_routers(), jobs=declared_jobs(guide_commands))
