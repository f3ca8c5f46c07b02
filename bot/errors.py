"""Domain errors: plain exceptions that say what was refused; the API layer answers them
(bot/api/errors.py), the chat turns them into a sentence. No domain module imports the API layer."""

from __future__ import annotations


class DomainError(Exception):
    """A refused request; nothing was written. `status` is the HTTP answer that fits (404 not
    found, 409 conflict, 422 a broken rule…), `code` a stable name, `details` optional data."""

    def __init__(self, status: int, code: str, message: str, details=None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
