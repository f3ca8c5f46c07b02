"""The guides' morning card (button_interaction: one message, buttons for the first items) and
its update after a tap (message/update_template_card, which the client library does not wrap)."""

from __future__ import annotations

import datetime as dt

from bot.wecom.client.base import APIGroup
from sop.engine.config import SopConfig
from sop.engine.engine import Versions
from sop.engine.models import SopItem

PUSH_KEY, DONE_KEY = "sop:push:", "sop:done:"


class CardAPI(APIGroup):
    secret_name = "app"

    async def update_template_card(self, *, userids: list[str], response_code: str, button: dict | None = None,
                                   template_card: dict | None = None) -> dict:
        body = {"userids": userids, "agentid": self._client.agent_id, "response_code": response_code,
                "button": button, "template_card": template_card}
        return await self._post("message/update_template_card", body, idempotent=False)


async def update_card(services, guide: str, response_code: str, label: str) -> None:
    await CardAPI(services.wecom).update_template_card(userids=[guide], response_code=response_code,
                                                       button={"replace_name": label})


async def digest_card(session, config: SopConfig, guide: str, day: str, items: list[SopItem], waiting: int, now: dt.datetime) -> dict:
    versions = Versions(session)
    lines, buttons = [], []
    for number, item in enumerate(items, 1):
        document = await versions.get(item.code, item.version)
        lines.append(f"{number}. {document.name}·{item.step_key}（{item.customers}位）")
        if len(buttons) < config.digest_items:
            if item.reach == "guide_push":
                buttons.append({"text": f"推送 {number}", "style": 1, "key": f"{PUSH_KEY}{item.id}"})
            else:
                buttons.append({"text": f"完成 {number}", "style": 2, "key": f"{DONE_KEY}{item.id}"})
    if waiting:
        lines.append(f"{waiting} 个群发任务等待您在「客户群发」中确认")
    return {
        "card_type": "button_interaction",
        "source": {"desc": "SOP任务"},
        "main_title": {"title": "今日SOP任务", "desc": f"{len(items)} 项待处理"},
        "sub_title_text": "\n".join(lines)[:400],
        "task_id": f"sop-digest-{guide}-{day}"[:128],
        "button_list": buttons or [{"text": "查看任务", "style": 1, "key": "sop:list"}],
    }
