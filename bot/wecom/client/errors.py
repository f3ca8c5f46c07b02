"""Typed failures of WeCom API calls; the job runner decides retry or defer from the type."""

from __future__ import annotations


class WeComAPIError(Exception):
    """WeCom answered with a non-zero errcode that retrying will not fix."""

    def __init__(self, errcode: int, errmsg: str = ""):
        super().__init__(f"WeCom errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class RateLimited(WeComAPIError):
    """Over a frequency limit (45009, 45033, or our own per-path limiter); try again after retry_after s."""

    def __init__(self, errcode: int, errmsg: str = "", retry_after: float = 60.0):
        super().__init__(errcode, errmsg)
        self.retry_after = retry_after


class WeComUnavailable(Exception):
    """WeCom could not be reached, timed out, or stayed busy (-1) after bounded retries.

    `maybe_delivered` is True when a non-idempotent call may have been carried out before the
    connection failed, so a blind retry could send the same thing twice.
    """

    def __init__(self, message: str, *, maybe_delivered: bool = False):
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


# Token problems: drop the cached token, fetch a new one, retry once.
TOKEN_ERRCODES = frozenset({40014, 41001, 42001})
# Frequency limits: per-minute (45009) and concurrency (45033).
RATE_LIMIT_ERRCODES = frozenset({45009, 45033})
SYSTEM_BUSY = -1
