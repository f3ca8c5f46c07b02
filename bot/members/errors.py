"""Domain errors: an ApiError subclass, so the admin API answers them in the standard shape and the
chat can turn the same error into a sentence."""

from __future__ import annotations

from bot.api.errors import ApiError


class MemberError(ApiError):
    """A refused change (not found, insufficient points, expired coupon…); nothing was written."""
