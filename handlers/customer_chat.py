"""Customers chatting through 微信客服 (kf_msg_or_event)."""

from bot.dispatcher import Router

router = Router("customer_chat")
