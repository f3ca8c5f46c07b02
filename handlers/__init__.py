"""One router per kind of inbound traffic; the dispatcher includes them all."""

from bot.dispatcher import Router


def all_routers() -> list[Router]:
    from handlers import app_events, contact, customer_chat, customer_tags, guide_commands, guide_tasks

    return [contact.router, customer_chat.router, guide_commands.router, guide_tasks.router, app_events.router, customer_tags.router]
