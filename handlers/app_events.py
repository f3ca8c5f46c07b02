"""Members and the WeCom app: opening it (recorded), and whatever no other handler understood —
an unknown menu key or text — answered with the list of commands.

all_routers() includes this router last, so its catch-alls never shadow a real command."""

from bot.dispatcher import EventContext, Router
from handlers.guide_commands import help_text, reply_to_guide

router = Router("app_events")


@router.on(msg_type="event", event="enter_agent")
async def member_opened_app(ctx: EventContext) -> None:
    ctx.log.info("member %s opened the app", ctx.event.user_id)


@router.on(msg_type="event", event="click", agent_id=bool)
async def member_tapped_unknown_menu(ctx: EventContext) -> None:
    ctx.log.info("member %s tapped menu key %r that nothing handles", ctx.event.user_id, ctx.event.get("EventKey"))
    await reply_to_guide(ctx, help_text("这个菜单暂时没有功能。"))


@router.on(msg_type="text", agent_id=bool)
async def member_wrote_unknown_command(ctx: EventContext) -> None:
    await reply_to_guide(ctx, help_text("没有看懂这条消息。"))
