"""Customers chatting through 微信客服 (kf_msg_or_event): pull new messages and answer each once."""

from sqlalchemy import select

from bot.dispatcher import EventContext, Router
from bot.members.chat.kf_sync import sync_and_answer, synced_since
from bot.storage.models import InboxEvent

router = Router("customer_chat")


@router.on(msg_type="event", event="kf_msg_or_event")
async def kf_messages_arrived(ctx: EventContext) -> None:
    # No KV lock around this: one sync at a time per account is the cursor's row lock (kf_sync.py).
    open_kfid = ctx.event.get("OpenKfId")
    if not open_kfid:
        ctx.log.warning("kf_msg_or_event without OpenKfId; nothing to sync")
        return
    received_at = await ctx.session.scalar(select(InboxEvent.received_at).where(InboxEvent.id == ctx.inbox_id))
    if received_at is not None and await synced_since(ctx.kv, open_kfid, received_at):
        return  # the usual case in a burst: an earlier callback's sync already read this one's messages
    handled = await sync_and_answer(ctx.session, ctx.services, open_kfid, ctx.event.get("Token"), received_at)
    ctx.log.info("kf %s: %d new message(s) taken in", open_kfid, handled)
