"""Guides writing to the WeCom app: customer lookups (`查 13800138000`, `查 张三`) and SOP tasks."""

import re

from bot.dispatcher import EventContext, Router
from bot.jobs import JobContext, tasks
from bot.members.cards import lookup_reply
from bot.members.config import members_config

router = Router("guide_commands")

GUIDE_REPLY_JOB = "guide.reply"
# 「查」 or its full-width spacing variants at the start; the rest is the phone or name.
LOOKUP = re.compile(r"^\s*查")


@router.on(msg_type="text", content=LOOKUP)
async def guide_looks_up_customer(ctx: EventContext) -> None:
    userid = ctx.event.user_id
    text = await lookup_reply(ctx.session, members_config(), userid, ctx.event.content or "")
    # Sent by a job after the commit: a slow or failing WeCom never holds the transaction.
    await ctx.enqueue(GUIDE_REPLY_JOB, {"touser": userid, "content": text},
                      dedupe_key=f"{GUIDE_REPLY_JOB}:{ctx.inbox_id}", priority=members_config().chat_reply_priority)


@tasks(GUIDE_REPLY_JOB)
async def send_guide_reply(ctx: JobContext, payload: dict) -> None:
    await ctx.services.wecom.message.send_text(payload["touser"], payload["content"])
