"""What the customers feature adds to the service: the welcome of an add (bot/customers/welcome.py),
the enrichment of new bindings (profile, tags, the benefit), the tag mirror, guide handover and the
customers API."""

from bot.api.spec import declared_routes
from bot.customers import api, api_handover, api_tags, enrich, models, tag_mirror, tag_mirror_models, welcome
from bot.jobs.registry import declared_jobs
from bot.wiring import Feature

FEATURE = Feature(
    "customers",
    routes=declared_routes(api_handover, api, api_tags),
    jobs=declared_jobs(welcome, enrich, tag_mirror),
    models=[models, tag_mirror_models],
)
