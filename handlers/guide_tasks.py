"""Guides and their SOP items in the WeCom app: 「任务」/「今日任务」 lists them, 「推送 N」 pushes a
guide_push item (the group send is created by a job, then the guide is told), 「完成 N」 completes
a guide_task item, 「完成情况」 shows their completion. The same from the app menu (click keys
sop:tasks, sop:progress) and from the buttons of the morning card (template_card_event).

A number or button that is not one of the guide's own waiting items gets a clear reply and
changes nothing. Replies go out by job, after the commit.
"""

import re

from bot.dispatcher import EventContext, Router
from bot.storage import utcnow
from sop.engine.cards import DONE_KEY, PUSH_KEY
from sop.engine.models import SopItem
from sop.engine.tick import (
    NOT_YOURS,
    PUSH_JOB,
    REPLY_JOB,
    complete_item,
    completion_text,
    item_number,
    task_list_text,
)

router = Router("guide_tasks")

LIST = re.compile(r"^(今日)?任务$")
PUSH = re.compile(r"^推送\s*(\d{1,4})$")
DONE = re.compile(r"^完成\s*(\d{1,4})$")
PROGRESS = re.compile(r"^完成情况$")
MENU_LIST, MENU_PROGRESS = "sop:tasks", "sop:progress"


async def _reply(ctx: EventContext, text: str | None, **extra) -> None:
    await ctx.enqueue(REPLY_JOB, {"touser": ctx.event.user_id, "content": text, **extra},
                      dedupe_key=f"{REPLY_JOB}:{ctx.inbox_id}")


@router.on(msg_type="text", content=LIST)
async def guide_lists_tasks(ctx: EventContext) -> None:
    await _reply(ctx, await task_list_text(ctx.session, ctx.event.user_id, utcnow()))


@router.on(msg_type="event", event="click", event_key=MENU_LIST)
async def guide_taps_task_menu(ctx: EventContext) -> None:
    await guide_lists_tasks(ctx)


@router.on(msg_type="text", content=PROGRESS)
async def guide_asks_progress(ctx: EventContext) -> None:
    await _reply(ctx, await completion_text(ctx.session, ctx.event.user_id))


@router.on(msg_type="event", event="click", event_key=MENU_PROGRESS)
async def guide_taps_progress_menu(ctx: EventContext) -> None:
    await guide_asks_progress(ctx)


@router.on(msg_type="text", content=PUSH)
async def guide_pushes_item(ctx: EventContext) -> None:
    number = int(PUSH.match((ctx.event.content or "").strip()).group(1))
    item = await item_number(ctx.session, ctx.event.user_id, number)
    if item is None or item.reach != "guide_push":
        await _reply(ctx, NOT_YOURS.format(n=number) if item is None else f"第 {number} 项是一对一任务，请回复「完成 {number}」")
        return
    await ctx.enqueue(PUSH_JOB, {"guide": ctx.event.user_id, "item_id": item.id},
                      dedupe_key=f"{PUSH_JOB}:{ctx.inbox_id}")


@router.on(msg_type="text", content=DONE)
async def guide_completes_item(ctx: EventContext) -> None:
    number = int(DONE.match((ctx.event.content or "").strip()).group(1))
    item = await item_number(ctx.session, ctx.event.user_id, number)
    if item is None:
        await _reply(ctx, NOT_YOURS.format(n=number))
        return
    _, text = await complete_item(ctx.session, ctx.event.user_id, item, utcnow())
    await _reply(ctx, text)


@router.on(msg_type="event", event="template_card_event")
async def guide_taps_card_button(ctx: EventContext) -> None:
    key, code, guide = ctx.event.get("EventKey") or "", ctx.event.get("ResponseCode"), ctx.event.user_id
    if key.startswith(PUSH_KEY) and key[len(PUSH_KEY):].isdigit():
        await ctx.enqueue(PUSH_JOB, {"guide": guide, "item_id": int(key[len(PUSH_KEY):]), "response_code": code},
                          dedupe_key=f"{PUSH_JOB}:{ctx.inbox_id}")
    elif key.startswith(DONE_KEY) and key[len(DONE_KEY):].isdigit():
        item = await ctx.session.get(SopItem, int(key[len(DONE_KEY):]))
        done, text = await complete_item(ctx.session, guide, item, utcnow())
        # Done: the button says so (no app message); refused: a text says why.
        await _reply(ctx, None if done else text, response_code=code, label="已完成" if done else "未完成")
    else:
        await _reply(ctx, await task_list_text(ctx.session, guide, utcnow()))
