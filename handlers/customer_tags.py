"""Tag changes in WeCom: keep the customer-tag mirror true (the re-reads run as jobs)."""

from bot.customers.tag_mirror import MIRROR_CUSTOMER_JOB, REFRESH_NAMES_JOB
from bot.dispatcher import EventContext, Router

router = Router("customer_tags")


@router.on(event="change_external_contact", change_type="edit_external_contact")
async def guide_edited_customer(ctx: EventContext) -> None:
    external_userid = ctx.event.external_user_id
    if external_userid:
        # One re-read per customer at a time is enough: it reads everything WeCom has now.
        await ctx.enqueue(MIRROR_CUSTOMER_JOB, {"external_userid": external_userid},
                          dedupe_key=f"customer-tags:{external_userid}:{ctx.event.dedup_key}")


@router.on(event="change_external_tag")
async def corp_tag_changed(ctx: EventContext) -> None:
    await ctx.enqueue(REFRESH_NAMES_JOB, {"id": ctx.event.get("Id"), "change_type": ctx.event.change_type},
                      dedupe_key=f"corp-tags:{ctx.event.dedup_key}")
