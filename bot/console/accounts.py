"""Console accounts: argon2id password hashes, roles as in the API, and lock-out after wrong passwords.

Lock-out: LOCK_AFTER consecutive wrong passwords lock the account for LOCK_SECONDS; while locked even
the right password is refused (so guessing cannot continue). An unknown username costs the same
argon2 work as a known one, so timing does not tell which usernames exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update

from bot.api.auth import Role
from bot.console.models import ConsoleSession, ConsoleUser
from bot.storage import Database, utcnow
from bot.stores.models import Store

LOCK_AFTER = 5
LOCK_SECONDS = 15 * 60
MIN_PASSWORD_LENGTH = 8
USER_ROLES = (Role.HQ_ADMIN, Role.STORE_MANAGER)
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AccountError(ValueError):
    """A refused account change; the message names what is wrong."""


@dataclass(frozen=True)
class SignInResult:
    user: ConsoleUser | None
    problem: str | None  # None | "invalid_credentials" | "locked"
    locked_until: dt.datetime | None = None


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 256:
        raise AccountError("password: at most 256 characters")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def run() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(run)


async def create_user(db: Database, username: str, password: str, role: str,
                      store_codes: list[str] | None = None) -> ConsoleUser:
    if not USERNAME.match(username):
        raise AccountError("username: 2–64 letters, digits or . _ @ -")
    if role not in {r.value for r in USER_ROLES}:
        raise AccountError(f"role: one of {', '.join(r.value for r in USER_ROLES)}")
    stores = list(dict.fromkeys(store_codes or []))
    if role == Role.STORE_MANAGER and not stores:
        raise AccountError("a store_manager needs at least one --store")
    if role == Role.HQ_ADMIN and stores:
        raise AccountError("an hq_admin sees every store; give no --store")
    check_password_rules(password)
    password_hash = await hash_password(password)
    async with db.session() as session, session.begin():
        known = set((await session.scalars(select(Store.code).where(Store.code.in_(stores)))).all())
        if missing := [code for code in stores if code not in known]:
            raise AccountError(f"store: no store {', '.join(missing)}")
        if await session.scalar(select(ConsoleUser.id).where(ConsoleUser.username == username)):
            raise AccountError(f"username: {username!r} already exists")
        user = ConsoleUser(username=username, password_hash=password_hash, role=role, store_codes=stores,
                           failed_attempts=0)
        session.add(user)
    return user


async def list_users(db: Database) -> list[ConsoleUser]:
    async with db.session() as session:
        return list((await session.scalars(select(ConsoleUser).order_by(ConsoleUser.username))).all())


async def _user_id(session, username: str) -> int:
    user_id = await session.scalar(select(ConsoleUser.id).where(ConsoleUser.username == username))
    if user_id is None:
        raise AccountError(f"username: no user {username!r}")
    return user_id


async def disable_user(db: Database, username: str) -> None:
    """The user cannot sign in any more and their open sessions end now."""
    async with db.session() as session, session.begin():
        user_id = await _user_id(session, username)
        await session.execute(update(ConsoleUser).where(ConsoleUser.id == user_id).values(disabled_at=utcnow()))
        await session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))


async def set_password(db: Database, username: str, password: str) -> None:
    """A new password ends every session of the user and lifts a lock-out."""
    check_password_rules(password)
    password_hash = await hash_password(password)
    async with db.session() as session, session.begin():
        user_id = await _user_id(session, username)
        await session.execute(update(ConsoleUser).where(ConsoleUser.id == user_id).values(
            password_hash=password_hash, failed_attempts=0, locked_until=None))
        await session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))


async def check_sign_in(db: Database, username: str, password: str) -> SignInResult:
    async with db.session() as session:
        user = await session.scalar(
            select(ConsoleUser).where(ConsoleUser.username == username, ConsoleUser.disabled_at.is_(None)))
    if user is None:
        await _verify(_DUMMY_HASH, password)
        return SignInResult(None, "invalid_credentials")
    now = utcnow()
    mine = ConsoleUser.id == user.id
    async with db.session() as session, session.begin():
        await session.execute(update(ConsoleUser).where(mine, ConsoleUser.locked_until <= now)
                              .values(failed_attempts=0, locked_until=None))
        # Each attempt takes a numbered slot before the (slow) hash check, so a burst of parallel
        # guesses gets at most LOCK_AFTER checks, not one per request.
        slot = await session.scalar(
            update(ConsoleUser)
            .where(mine, ConsoleUser.locked_until.is_(None), ConsoleUser.failed_attempts < LOCK_AFTER)
            .values(failed_attempts=ConsoleUser.failed_attempts + 1).returning(ConsoleUser.failed_attempts))
        if slot is None:
            until = await session.scalar(select(ConsoleUser.locked_until).where(mine))
            return SignInResult(None, "locked", until or now + dt.timedelta(seconds=LOCK_SECONDS))
    if await _verify(user.password_hash, password):
        async with db.session() as session, session.begin():
            await session.execute(update(ConsoleUser).where(mine).values(
                failed_attempts=0, locked_until=None, last_sign_in_at=now))
        return SignInResult(user, None)
    if slot >= LOCK_AFTER:
        until = now + dt.timedelta(seconds=LOCK_SECONDS)
        async with db.session() as session, session.begin():
            await session.execute(update(ConsoleUser).where(mine).values(locked_until=until))
        return SignInResult(None, "locked", until)
    return SignInResult(None, "invalid_credentials")
