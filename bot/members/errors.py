"""Domain errors: a plain exception (bot.errors.DomainError); the admin API answers it in the
standard shape and the chat turns the same error into a sentence."""

from __future__ import annotations

from bot.errors import DomainError


class MemberError(DomainError):
    """A refused change (not found, insufficient points, expired coupon…); nothing was written."""
