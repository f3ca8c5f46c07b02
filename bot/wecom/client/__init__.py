"""Asyncio client for the WeCom server API (see WeComClient)."""

from .client import WeComClient
from .errors import RateLimited, WeComAPIError, WeComUnavailable

__all__ = ["RateLimited", "WeComAPIError", "WeComClient", "WeComUnavailable"]
