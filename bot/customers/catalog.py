"""Rows every add event reads and almost nobody writes: channels, guides, stores, contact ways —
served from a per-process read-through copy instead of one query each.

Like the store directory (bot/stores/directory.py), the copy is dropped when a shared version in
the KV store moves (`catalog_changed`, and the stores' own version), looked at no more than once a
second, and in any case once it is MAX_AGE old (a CLI write cannot reach a server's in-process KV).
A row not in the copy is read from the database, so a row created a moment ago is found at once;
only an edit of an existing row waits for the version (or MAX_AGE).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from bot.stores.directory import VERSION_KEY as STORES_VERSION_KEY
from bot.stores.models import Channel, ContactWay, Guide, Store

VERSION_KEY = "catalog:version"
CHECK_SECONDS = 1.0
MAX_AGE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ChannelCard:
    code: str
    tag_names: tuple[str, ...]
    welcome_text: str | None
    benefit_template_code: str | None


@dataclass(frozen=True, slots=True)
class GuideCard:
    userid: str
    name: str
    store_code: str | None


@dataclass(frozen=True, slots=True)
class WayCard:
    state: str
    channel_code: str
    store_code: str | None


class Catalog:
    """One per Services (see `catalog_for`)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], object] = {}
        self._version: tuple | None = None
        self._checked_at = self._loaded_at = 0.0

    async def _fresh(self, services) -> None:
        now = time.monotonic()
        if now - self._checked_at < CHECK_SECONDS:
            return
        self._checked_at = now
        version = (await services.kv.get(VERSION_KEY), await services.kv.get(STORES_VERSION_KEY))
        if version != self._version or now - self._loaded_at > MAX_AGE_SECONDS:
            self._rows, self._version, self._loaded_at = {}, version, now

    async def read_through(self, services, kind: str, key: str, read, session=None):
        """The copy of (kind, key), or `await read(session, key)` remembered (when found)."""
        await self._fresh(services)
        found = self._rows.get((kind, key))
        if found is not None:
            return found
        if session is not None:
            found = await read(session, key)
        else:
            async with services.db.session() as own:
                found = await read(own, key)
        if found is not None:  # a row not there yet may be created any moment: never remember its absence
            self._rows[(kind, key)] = found
        return found

    async def channel(self, services, code: str, session=None) -> ChannelCard | None:
        return await self.read_through(services, "channel", code, _read_channel, session)

    async def guide(self, services, userid: str, session=None) -> GuideCard | None:
        return await self.read_through(services, "guide", userid, _read_guide, session)

    async def store_name(self, services, code: str, session=None) -> str | None:
        return await self.read_through(services, "store", code, _read_store_name, session)

    async def contact_way(self, services, state: str, session=None) -> WayCard | None:
        return await self.read_through(services, "way", state, _read_way, session)


async def _read_channel(session, code: str) -> ChannelCard | None:
    row = (await session.execute(select(
        Channel.code, Channel.tag_names, Channel.welcome_text, Channel.benefit_template_code,
    ).where(Channel.code == code))).first()
    return row and ChannelCard(row.code, tuple(row.tag_names or ()), row.welcome_text, row.benefit_template_code)


async def _read_guide(session, userid: str) -> GuideCard | None:
    row = (await session.execute(select(Guide.userid, Guide.name, Guide.store_code)
                                 .where(Guide.userid == userid))).first()
    return row and GuideCard(row.userid, row.name, row.store_code)


async def _read_store_name(session, code: str) -> str | None:
    return await session.scalar(select(Store.name).where(Store.code == code))


async def _read_way(session, state: str) -> WayCard | None:
    row = (await session.execute(select(ContactWay.state, ContactWay.channel_code, ContactWay.store_code)
                                 .where(ContactWay.state == state))).first()
    return row and WayCard(row.state, row.channel_code, row.store_code)


async def catalog_changed(kv) -> None:
    """Tell every process to drop its copy (call after committing a write to these rows)."""
    await kv.incr(VERSION_KEY)


def catalog_for(services) -> Catalog:
    """The catalog of this Services (one per app, so tests with several apps stay apart)."""
    catalog = getattr(services, "_customer_catalog", None)
    if catalog is None:
        catalog = Catalog()
        services._customer_catalog = catalog
    return catalog
