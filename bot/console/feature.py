"""What the web console adds to the service: its sign-in (session cookie), its pages, CSV imports
and `wecom-assistant user`."""

from bot.api.spec import declared_routes
from bot.console import cli, customer_outreach, imports, models, sessions, views
from bot.wiring import Feature

FEATURE = Feature(
    "console",
    routes=declared_routes(imports, customer_outreach),
    models=[models],
    pages=[views.setup_routes],  # /api/v1/session and the built console at /console/
    commands=[cli.user_group],
    sign_in=sessions.principal_from_cookie,
)
