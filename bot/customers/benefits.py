"""What the welcome asks of a members feature, when the process has one (bot/members/feature.py
provides these): the sentence naming the new-member benefit, and granting it. Who is a new customer
is the welcome's rule (bot/customers/welcome.py `is_first_add`), for both. The customers feature
sits below the members feature, so it asks by name instead of importing it."""

from __future__ import annotations

from bot.wiring import provided

__all__ = ["GRANT_NEW_MEMBER_BENEFITS", "NEW_MEMBER_SENTENCE", "provided"]

NEW_MEMBER_SENTENCE = "customers.new_member_sentence"  # (services, template_code) -> str | None
GRANT_NEW_MEMBER_BENEFITS = "customers.grant_new_member_benefits"  # (services, [(external_userid, template_code)])

