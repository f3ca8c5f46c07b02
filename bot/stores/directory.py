"""The stores every process keeps in memory for locate: a StoreIndex plus name, city, status, hours.

Loading 10,000 stores from the database on each scan would dominate locate's time, so each process
holds a copy and reloads it when the shared version counter in the KV store moves (every write to
stores bumps it), so several web processes agree within one request. Without Redis a CLI import
cannot reach a server's in-process KV, so a copy is also reloaded once it is MAX_AGE old.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.lbs import IndexedStore, StoreIndex
from bot.stores.hours import CHINA, is_within
from bot.stores.models import Store

VERSION_KEY = "stores:version"
MAX_AGE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class StoreCard:
    code: str
    name: str
    city: str
    address: str
    lat: float | None
    lng: float | None
    status: str
    opening_hours: dict | None

    def open_at(self, when: dt.datetime, zone: ZoneInfo = CHINA) -> bool:
        """The one rule for "open now" (the page's 休息中 note and the choice of stores)."""
        return self.status == "open" and is_within(self.opening_hours, when, zone)


class StoreDirectory:
    """Nearest open stores and the city → store list, from a per-process snapshot."""

    def __init__(self, cell_size_m: float = 5_000.0) -> None:
        self.cell_size_m = cell_size_m
        self.cards: dict[str, StoreCard] = {}
        self.index = StoreIndex(cell_size_m=cell_size_m)
        self._version: str | None = None
        self._loaded_at = 0.0
        self._loading = asyncio.Lock()

    async def refresh(self, services) -> None:
        """Reload when another writer (or this one) changed the stores since the last load."""
        version = await services.kv.get(VERSION_KEY) or "0"
        if version == self._version and time.monotonic() - self._loaded_at < MAX_AGE_SECONDS:
            return
        async with self._loading:
            if version == self._version and time.monotonic() - self._loaded_at < MAX_AGE_SECONDS:
                return
            async with services.db.session() as session:
                rows = (await session.scalars(select(Store))).all()
            self.load(rows)
            self._version, self._loaded_at = version, time.monotonic()

    def load(self, rows) -> None:
        cards = {
            row.code: StoreCard(row.code, row.name, row.city, row.address, row.lat, row.lng, row.status,
                                row.opening_hours)
            for row in rows
        }
        index = StoreIndex(
            (IndexedStore(c.code, c.lat, c.lng) for c in cards.values() if c.lat is not None),
            cell_size_m=self.cell_size_m,
        )
        self.cards, self.index = cards, index

    def nearest(
        self, lat: float, lng: float, radius_m: float, when: dt.datetime, limit: int = 5, zone: ZoneInfo = CHINA
    ) -> tuple[list[tuple[StoreCard, float]], bool]:
        """Stores within the radius, nearest first, and whether these stores are open right now.

        Stores open now win; when every store in range is closed for the night, the ones with
        status open are offered anyway (a guide answers in the morning) and the flag says so.
        The flag is about this list only: an offer elsewhere asks its own store's `open_at`.
        """
        found = self.index.nearest(lat, lng, radius_m, limit,
                                   accept=lambda s: self.cards[s.code].open_at(when, zone))
        open_now = bool(found)
        if not found:
            found = self.index.nearest(lat, lng, radius_m, limit,
                                       accept=lambda s: self.cards[s.code].status == "open")
        return [(self.cards[s.code], distance) for s, distance in found], open_now

    def cities(self) -> dict[str, list[StoreCard]]:
        """Open stores by city for the picker, both sorted by name."""
        by_city: dict[str, list[StoreCard]] = {}
        for card in sorted(self.cards.values(), key=lambda c: (c.city, c.name)):
            if card.status == "open":
                by_city.setdefault(card.city or "其他", []).append(card)
        return by_city


async def stores_changed(kv) -> None:
    """Tell every process's directory to reload (call with the KV store after committing a store write)."""
    await kv.incr(VERSION_KEY)


def directory_for(services) -> StoreDirectory:
    """The directory of this Services (one per app, so tests with several apps stay apart)."""
    directory = getattr(services, "_store_directory", None)
    if directory is None:
        directory = StoreDirectory()
        services._store_directory = directory
    return directory
