"""Customer-contact events: a customer adds or deletes a guide, handovers fail.

Handlers only write rows and queue jobs in the inbox transaction; WeCom calls run in jobs. An add:
the welcome is written at intake (bot/customers/welcome.py), the binding when the event is
dispatched (bot/customers/binding.py), then the enrichment is queued (bot/customers/enrich.py:
profile, tags and the new-member benefit the welcome named).
"""

from bot.customers import binding, enrich, handover, welcome
from bot.dispatcher import EventContext, Router
from bot.storage import utcnow

router = Router("contact")
router.at_intake(welcome.welcome_at_intake)  # the welcome is written with the inbox row
CONTACT = "change_external_contact"


@router.on(event=CONTACT, change_type={"add_external_contact", "add_half_external_contact"})
async def customer_added_guide(ctx: EventContext) -> None:
    if await binding.bind_on_add(ctx, utcnow()) is not None:
        await enrich.queue_enrich(ctx)


@router.on(event=CONTACT, change_type={"del_follow_user", "del_external_contact"})
async def friendship_ended(ctx: EventContext) -> None:
    event = ctx.event
    if not event.user_id or not event.external_user_id:
        return
    reason = binding.end_reason(event.change_type, event.get("Source"))
    ended = await binding.end_binding(ctx.session, event.external_user_id, event.user_id, reason, utcnow())
    if ended is None:
        ctx.log.info("no open binding for %s / %s (%s)", event.external_user_id, event.user_id, reason)


@router.on(event=CONTACT, change_type="transfer_fail")
async def handover_failed(ctx: EventContext) -> None:
    event = ctx.event
    await handover.revert_failed_transfer(
        ctx.session, event.external_user_id, event.user_id, event.get("FailReason") or "unknown", utcnow()
    )
