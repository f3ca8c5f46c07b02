"""Cookie sessions for the console, turned into the API's Principal.

The cookie holds a random 256-bit token (kept only as SHA-256), is HttpOnly and SameSite=Strict.
Every state-changing call must also send the session's CSRF token in X-CSRF-Token (synchronizer
token: a page on another site can neither read it nor set that header). Sessions end after
IDLE_SECONDS without use and at the latest MAX_SECONDS after sign-in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from aiohttp import web
from sqlalchemy import delete, select, update

from bot.api.auth import Principal, Role
from bot.api.errors import ApiError
from bot.console.models import ConsoleSession, ConsoleUser
from bot.storage import Database, utcnow

COOKIE = "wa_console"
CSRF_HEADER = "X-CSRF-Token"
IDLE_SECONDS = 8 * 3600
MAX_SECONDS = 7 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(db: Database, user_id: int) -> tuple[str, ConsoleSession]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = ConsoleSession(token_hash=_hash(token), user_id=user_id, csrf_token=secrets.token_urlsafe(32),
                         created_at=now, expires_at=now + dt.timedelta(seconds=IDLE_SECONDS))
    async with db.session() as session, session.begin():
        # Expired sessions are swept at sign-in, so the table stays the size of who is signed in.
        await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        session.add(row)
    return token, row


async def close_session(db: Database, token: str) -> None:
    async with db.session() as session, session.begin():
        await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _hash(token)))


async def current_session(db: Database, token: str) -> tuple[ConsoleSession, ConsoleUser] | None:
    """The live session and its (enabled) user, its idle expiry pushed forward; None when ended."""
    now = utcnow()
    async with db.session() as session:
        found = (await session.execute(
            select(ConsoleSession, ConsoleUser).join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
            .where(ConsoleSession.token_hash == _hash(token), ConsoleSession.expires_at > now,
                   ConsoleUser.disabled_at.is_(None)))).first()
    if found is None:
        return None
    row, user = found
    renewed = min(now + dt.timedelta(seconds=IDLE_SECONDS), row.created_at + dt.timedelta(seconds=MAX_SECONDS))
    if renewed - row.expires_at > dt.timedelta(minutes=5):  # write at most every few minutes
        async with db.session() as session, session.begin():
            await session.execute(update(ConsoleSession).where(ConsoleSession.id == row.id)
                                  .values(expires_at=renewed))
    return row, user


def principal_for(user: ConsoleUser) -> Principal:
    # Negative ids keep console users apart from API tokens wherever token_id is recorded.
    return Principal(-user.id, Role(user.role), tuple(user.store_codes or ()), username=user.username, user_id=user.id)


def csrf_ok(request: web.Request, row: ConsoleSession) -> bool:
    sent = request.headers.get(CSRF_HEADER, "")
    return bool(sent) and hmac.compare_digest(sent.encode(), row.csrf_token.encode())


async def principal_from_cookie(request: web.Request, db: Database) -> Principal | None:
    """The console user behind the request's session cookie; None without a cookie.

    An ended session answers 401 session_expired (the console then signs in again and comes
    back); a state-changing call without the session's CSRF token answers 403 csrf_failed.
    """
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    found = await current_session(db, token)
    if found is None:
        raise ApiError(401, "session_expired", "the console session has ended; sign in again")
    row, user = found
    if request.method not in SAFE_METHODS and not csrf_ok(request, row):
        raise ApiError(403, "csrf_failed", f"send the session's CSRF token in {CSRF_HEADER}")
    return principal_for(user)
