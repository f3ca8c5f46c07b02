"""One router per kind of inbound traffic; the dispatcher includes them all."""

from bot.dispatcher import Router


def all_routers() -> list[Router]:
    from handlers import app_events, contact, customer_chat, customer_tags, guide_commands, guide_tasks

    # app_events last: its catch-alls answer any guide text or menu tap nobody else handled.
    return [contact.router, customer_tags.router, customer_chat.router, guide_commands.router, guide_tasks.router,
            app_events.router]
