"""Guides writing to the WeCom app: customer lookups and SOP tasks."""

from bot.dispatcher import Router

router = Router("guide_commands")
