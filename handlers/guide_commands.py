"""Guides writing to the WeCom app: customer lookups (`查 13800138000`, `查 张三`), 「帮助」, SOP tasks."""

import re

from bot.dispatcher import EventContext, Router
from bot.jobs import JobContext, Priority, tasks
from bot.members.cards import lookup_reply
from bot.members.config import MembersConfig

router = Router("guide_commands")

GUIDE_REPLY_JOB = "guide.reply"
# 「查」 or its full-width spacing variants at the start; the rest is the phone or name.
LOOKUP = re.compile(r"^\s*查")
HELP = re.compile(r"^\s*(帮助|help|菜单|[?？])\s*$", re.IGNORECASE)

# What a guide can write to the app; a new command adds its line here.
GUIDE_COMMANDS = (
    ("查 手机号 / 查 姓名", "查看您名下客户的卡片：积分、券、标签、最近消费"),
    ("任务 / 今日任务", "列出待您处理的 SOP 任务（编号）和等您在企业微信确认的群发"),
    ("推送 N", "把第 N 项推送任务发成群发，再到企业微信里确认发送"),
    ("完成 N", "把第 N 项 1 对 1 任务标记为已完成"),
    ("完成情况", "查看您的任务完成情况"),
    ("帮助", "显示这份命令列表"),
)


def help_text(intro: str = "") -> str:
    lines = [intro] if intro else []
    lines.append("可以发送：")
    lines += [f"「{command}」{what}" for command, what in GUIDE_COMMANDS]
    return "\n".join(lines)


async def reply_to_guide(ctx: EventContext, text: str) -> None:
    """Sent by a job after the commit: a slow or failing WeCom never holds the transaction."""
    await ctx.enqueue(GUIDE_REPLY_JOB, {"touser": ctx.event.user_id, "content": text},
                      dedupe_key=f"{GUIDE_REPLY_JOB}:{ctx.inbox_id}")


@router.on(msg_type="text", content=LOOKUP)
async def guide_looks_up_customer(ctx: EventContext) -> None:
    config = ctx.services.config(MembersConfig)
    text = await lookup_reply(ctx.session, config, ctx.event.user_id, ctx.event.content or "")
    await reply_to_guide(ctx, text)


@router.on(msg_type="text", content=HELP)
async def guide_asks_for_help(ctx: EventContext) -> None:
    await reply_to_guide(ctx, help_text())


@tasks(GUIDE_REPLY_JOB, priority=Priority.REPLY, quick=True)
async def send_guide_reply(ctx: JobContext, payload: dict) -> None:
    await ctx.services.wecom.message.send_text(payload["touser"], payload["content"])
