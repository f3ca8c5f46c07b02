"""Bearer tokens: random 256-bit strings, kept only as SHA-256; roles with their scopes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from aiohttp import web
from sqlalchemy import select

from bot.api.errors import ApiError
from bot.storage import Database
from bot.storage.models import ApiToken


class Role(StrEnum):
    HQ_ADMIN = "hq_admin"
    STORE_MANAGER = "store_manager"  # scoped to its stores
    GUIDE = "guide"  # scoped to itself
    INTEGRATION = "integration"  # POS and mall systems


@dataclass(frozen=True)
class Principal:
    token_id: int
    role: Role
    store_codes: tuple[str, ...] = field(default=())
    guide_userid: str | None = None
    username: str | None = None  # a person signed in to the console (token_id is then -user id)
    user_id: int | None = None  # that person's console user id (what the audit log records)

    def can_see_store(self, store_code: str | None) -> bool:
        if self.role in (Role.HQ_ADMIN, Role.INTEGRATION):
            return True
        return self.role == Role.STORE_MANAGER and store_code in self.store_codes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    db: Database, role: Role, *, store_codes: list[str] | None = None, guide_userid: str | None = None,
    name: str = "",
) -> str:
    """Store a new token's hash and return the token itself (shown once)."""
    if role == Role.STORE_MANAGER and not store_codes:
        raise ValueError("a store_manager token needs at least one --store")
    if role == Role.GUIDE and not guide_userid:
        raise ValueError("a guide token needs --guide USERID")
    token = "wa_" + secrets.token_urlsafe(32)
    async with db.session() as session, session.begin():
        session.add(
            ApiToken(
                token_hash=hash_token(token), role=role.value, name=name,
                store_codes=list(store_codes or []), guide_userid=guide_userid,
            )
        )
    return token


# How a caller without a bearer token signs in, (request, db) -> Principal | None: the console's
# session cookie (bot/console/sessions.py), set by the app's composition.
SIGN_IN = web.AppKey("sign_in", object)


async def authenticate(request: web.Request, db: Database) -> Principal:
    header = request.headers.get("Authorization", "")
    sign_in = request.app.get(SIGN_IN)
    if not header and sign_in is not None:  # a person in the console: session cookie (+ CSRF on writes)
        if (person := await sign_in(request, db)) is not None:
            return person
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "send Authorization: Bearer <token>")
    if not token.isascii():  # ours are ASCII; other bytes arrive surrogate-escaped and cannot be hashed
        raise ApiError(401, "unauthenticated", "unknown or revoked token")
    async with db.session() as session:
        row = await session.scalar(
            select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip()), ApiToken.revoked_at.is_(None))
        )
    if row is None:
        raise ApiError(401, "unauthenticated", "unknown or revoked token")
    return Principal(row.id, Role(row.role), tuple(row.store_codes or ()), row.guide_userid)
