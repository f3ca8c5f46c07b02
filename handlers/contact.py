"""Customer-contact events: a customer adds or deletes a guide, handovers fail."""

from bot.dispatcher import Router

router = Router("contact")
