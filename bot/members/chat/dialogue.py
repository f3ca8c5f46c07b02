"""From one customer message to one reply: classify, check membership, answer."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.members.chat import answers
from bot.members.chat.intents import classify
from bot.members.chat.replies import Reply, help_menu
from bot.members.config import MembersConfig

MEMBERS_ONLY = {"points", "coupons", "mall", "mall_item", "mall_confirm"}


async def answer_message(
    session: AsyncSession, config: MembersConfig, message: dict, conversation: answers.Conversation
) -> tuple[str, Reply]:
    """(intent, reply) for a customer's text (or menu tap); anything else gets the help menu."""
    content = (message.get("text") or {}) if message.get("msgtype") == "text" else {}
    intent, argument = classify(content.get("content"), content.get("menu_id"))
    if intent == "confirm_word":
        # 「确认」 typed instead of tapped: only meaningful while a redemption waits for it.
        intent = "mall_confirm" if (conversation.pending or {}).get("mall") else "unknown"
    elif conversation.pending and intent not in ("mall_confirm", "mall_cancel"):
        conversation.pending = None  # the customer moved on: a later 「确认」 must not redeem
    member = await answers.load_member(session, message["external_userid"])
    asker = answers.Asker(message["external_userid"], member, conversation, message["msgid"])
    if intent in MEMBERS_ONLY and member is None:
        return intent, answers.join_hint(config)
    if intent == "points":
        return intent, await answers.points(session, config, asker)
    if intent == "coupons":
        return intent, await answers.my_coupons(session, config, asker)
    if intent == "mall":
        return intent, await answers.mall(session, config, asker)
    if intent == "mall_item":
        return intent, await answers.mall_item(session, config, asker, argument)
    if intent == "mall_confirm":
        return intent, await answers.mall_confirm(session, config, asker, argument)
    if intent == "mall_cancel":
        return intent, await answers.mall_cancel(session, config, asker)
    if intent == "guide":
        return intent, await answers.guide_and_store(session, config, asker)
    if intent == "join":
        return intent, await answers.join(session, config, asker)
    if intent == "help":
        return intent, help_menu()
    return "unknown", help_menu("抱歉，我没太明白。您可以点击下面的选项：")


async def welcome_reply(session: AsyncSession, config: MembersConfig, external_userid: str) -> Reply:
    """enter_session: greet by membership, with the menu."""
    member = await answers.load_member(session, external_userid)
    return welcome_menu(config, None if member is None else member.points_balance)


def welcome_menu(config: MembersConfig, points_balance: int | None) -> Reply:
    """The greeting for a member with this balance, or (None) for someone not a member yet."""
    if points_balance is None:
        how = "回复「入会」免费成为会员，" if config.chat_join_enabled else ""
        return help_menu(f"欢迎光临！{how}我可以帮您：")
    return help_menu(f"欢迎回来！您当前有 {points_balance} 积分，我可以帮您：")
