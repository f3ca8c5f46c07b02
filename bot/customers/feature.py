"""What the customers feature adds to the service: the welcome and profile jobs of a new binding,
the tag mirror, guide handover and the customers API."""

from bot.api.spec import declared_routes
from bot.customers import api, api_handover, api_tags, followup, models, tag_mirror, tag_mirror_models
from bot.jobs.registry import declared_jobs
from bot.wiring import Feature

FEATURE = Feature(
    "customers",
    routes=declared_routes(api_handover, api, api_tags),
    jobs=declared_jobs(followup, tag_mirror),
    models=[models, tag_mirror_models],
)
