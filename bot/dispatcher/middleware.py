"""The standard middlewares: log context, per-customer lock. The DB session is opened by the
inbox job around the whole dispatch so the handler's rows and the inbox status commit together."""

from __future__ import annotations

import contextlib

from bot.dispatcher.context import EventContext
from bot.logs import bind_log_context


async def log_context(handler, ctx: EventContext):
    with bind_log_context(
        event_id=ctx.inbox_id, event_kind=ctx.event.kind, userid=ctx.event.user_id,
        external_userid=ctx.event.external_user_id,
    ):
        return await handler(ctx)


def customer_of(event) -> str | None:
    """Whose events must not race: the customer. (A 微信客服 account's callbacks take no lock here:
    its sync holds the cursor's row lock, and a callback already synced returns before taking it.)"""
    return event.external_user_id or None


def customer_lock_for(kv, customer: str | None):
    """The per-customer lock (a no-op context for events of no customer)."""
    return kv.lock(f"customer:{customer}", timeout=60, wait=60) if customer else contextlib.nullcontext()


async def customer_lock(handler, ctx: EventContext):
    """Two events of one customer never race (e.g. an add and a delete arriving together)."""
    if ctx.customer_locked:  # the inbox job took it before opening the transaction
        return await handler(ctx)
    async with customer_lock_for(ctx.kv, customer_of(ctx.event)):
        return await handler(ctx)


class AlreadyHandled(Exception):
    """Another run of the same inbox event committed first; nothing to do."""


def claim_inbox_row(inbox_id: int, returning=None):
    """Mark the inbox row handled if it is still to do; RETURNING its id (or the columns `returning`).
    A statement and its parameters, to run with `session.execute(*claim_inbox_row(...))`."""
    from bot.storage import utcnow

    returning = _columns(returning)
    statement = _CLAIMS.get(returning)
    if statement is None:
        statement = _CLAIMS[returning] = _claim_statement(returning)
    return statement, {"claimed_inbox_id": inbox_id, "claimed_at": utcnow()}


def claim_inbox_group(dispatch_key: str):
    """Mark every inbox row of `dispatch_key` that is still to do handled; RETURNING their id,
    received_at and plaintext. A statement and its parameters, like claim_inbox_row."""
    from bot.storage import utcnow

    global _GROUP_CLAIM
    if _GROUP_CLAIM is None:
        _GROUP_CLAIM = _group_claim_statement()
    return _GROUP_CLAIM, {"claimed_key": dispatch_key, "claimed_at": utcnow()}


def _columns(returning) -> tuple:
    from bot.storage.models import InboxEvent

    if returning is None:
        return (InboxEvent.__table__.c.id,)
    return tuple(returning) if isinstance(returning, tuple | list) else (returning,)


def _to_do():
    from sqlalchemy import literal_column

    from bot.storage.models import InboxEvent

    # Literals, spelled as in the partial index ix_inbox_events_to_do (a generic plan can use it).
    return InboxEvent.__table__.c.status.in_((literal_column("'pending'"), literal_column("'failed'")))


def _claim_statement(returning: tuple):
    # Core on the table, built once per RETURNING: no ORM bulk-update machinery, no statement
    # construction or cache-key walk per event.
    from sqlalchemy import bindparam

    from bot.storage.models import InboxEvent

    inbox = InboxEvent.__table__
    return (
        inbox.update()
        .where(inbox.c.id == bindparam("claimed_inbox_id"), _to_do())
        .values(status="handled", handled_at=bindparam("claimed_at", type_=inbox.c.handled_at.type),
                attempts=inbox.c.attempts + 1)
        .returning(*returning)
    )


def _group_claim_statement():
    from sqlalchemy import bindparam

    from bot.storage.models import InboxEvent

    inbox = InboxEvent.__table__
    return (
        inbox.update()
        .where(inbox.c.dispatch_key == bindparam("claimed_key", type_=inbox.c.dispatch_key.type), _to_do())
        .values(status="handled", handled_at=bindparam("claimed_at", type_=inbox.c.handled_at.type),
                attempts=inbox.c.attempts + 1)
        .returning(inbox.c.id, inbox.c.received_at, inbox.c.plaintext)
    )


_CLAIMS: dict = {}
_GROUP_CLAIM = None


async def db_session(handler, ctx: EventContext):
    """One transaction for the handler's rows, its follow-up jobs and the inbox status.

    The first statement claims the inbox row, so a second run of the same event (a worker whose
    lease ran out) waits on the row lock and then finds it handled: effects happen once. The inbox
    job may have opened it already (and claimed the row in it): then this adds nothing.
    """
    if ctx.session is not None:
        return await handler(ctx)
    from bot.storage.models import InboxEvent

    async with ctx.services.db.session() as session, session.begin():
        claimed = (await session.execute(*claim_inbox_row(ctx.inbox_id, returning=InboxEvent.received_at))).first()
        if claimed is None:
            raise AlreadyHandled(ctx.inbox_id)
        ctx.session, ctx.received_at = session, claimed.received_at
        try:
            return await handler(ctx)
        finally:
            ctx.session = None
