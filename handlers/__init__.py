"""One router per kind of inbound traffic; the dispatcher includes them all."""

from bot.dispatcher import Router


def all_routers() -> list[Router]:
    from handlers import app_events

    return [app_events.router]
