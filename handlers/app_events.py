"""Members opening the app (enter_agent): recorded, nothing to answer yet."""

from bot.dispatcher import EventContext, Router

router = Router("app_events")


@router.on(msg_type="event", event="enter_agent")
async def member_opened_app(ctx: EventContext) -> None:
    ctx.log.info("member %s opened the app", ctx.event.user_id)
