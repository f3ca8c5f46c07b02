"""Customers chatting through 微信客服 (kf_msg_or_event): pull new messages and answer each once."""

from bot.dispatcher import EventContext, Router
from bot.members.chat.kf_sync import sync_and_answer, synced_since
from bot.wecom.events import InboundEvent

router = Router("customer_chat")


@router.coalesce
def kf_account(event: InboundEvent) -> str | None:
    """A callback only says "the account has new messages": any sync that starts after it arrived
    reads them, so all of an account's pending callbacks are dispatched by one job."""
    if event.msg_type == "event" and event.event == "kf_msg_or_event" and event.get("OpenKfId"):
        return f"kf:{event.get('OpenKfId')}"
    return None


@router.on(msg_type="event", event="kf_msg_or_event")
async def kf_messages_arrived(ctx: EventContext) -> None:
    # No KV lock around this: one sync at a time per account is the cursor's row lock (kf_sync.py).
    # Coalesced (kf_account): ctx.event is the newest pending callback, ctx.received_at its arrival.
    open_kfid = ctx.event.get("OpenKfId")
    if not open_kfid:
        ctx.log.warning("kf_msg_or_event without OpenKfId; nothing to sync")
        return
    received_at = ctx.received_at
    if received_at is not None and await synced_since(ctx.kv, open_kfid, received_at):
        return  # a sync that began after these callbacks arrived already read their messages
    handled = await sync_and_answer(ctx.session, ctx.services, open_kfid, ctx.event.get("Token"), received_at,
                                    ctx.after_commit if ctx.runs_after_commit else None)
    ctx.log.info("kf %s: %d new message(s) taken in", open_kfid, handled)
