"""In-memory nearest-store index: which open stores are within a radius of the customer, nearest first.

Stores sit in a grid of latitude/longitude cells. A query visits only the cells that can hold a
point within the radius; the longitude span of that patch is computed on the sphere, so it widens
toward the poles and wraps across the 180° meridian. Candidates are compared by chord length
between unit vectors (cheap, and ordered exactly like great-circle distance); the distance
returned and the radius test are haversine. A wide radius is searched in growing steps that stop
once `limit` stores are found, so a 100 km radius over a dense city costs about what 5 km does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.lbs.datum import EARTH_RADIUS_M, haversine_m, validate_coordinates

_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
# Pre-filters are widened (chord by ~6 µm, cell patch by ~0.1 mm) so float rounding never drops a
# store that the haversine radius test would keep.
_CHORD_SLACK = 1e-12
_MARGIN_DEG = 1e-9


@dataclass(frozen=True, slots=True)
class IndexedStore:
    """A store's code and its GCJ-02 position."""

    code: str
    lat: float
    lng: float

    def __post_init__(self) -> None:
        lat, lng = validate_coordinates(self.lat, self.lng)
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lng", lng)


def _unit_vector(lat: float, lng: float) -> tuple[float, float, float]:
    phi, lmb = math.radians(lat), math.radians(lng)
    cos_phi = math.cos(phi)
    return cos_phi * math.cos(lmb), cos_phi * math.sin(lmb), math.sin(phi)


class StoreIndex:
    """Stores keyed by code, indexed for nearest-within-radius queries; single-store edits are O(1).

    `cell_size_m` is best near the usual search radius: smaller cells mean more cells per query,
    larger ones more stores to compare. Any radius gives correct answers. Not thread-safe: the
    service edits and queries it from one event loop.
    """

    def __init__(self, stores: Iterable[IndexedStore] = (), cell_size_m: float = 5_000.0) -> None:
        if not cell_size_m > 0:
            raise ValueError(f"cell_size_m must be positive, got {cell_size_m!r}")
        self._n_cols = max(1, math.floor(360.0 / (cell_size_m / _M_PER_DEG)))
        self._col_deg = 360.0 / self._n_cols  # whole columns, so the wrap at ±180° is seamless
        self._row_deg = min(cell_size_m / _M_PER_DEG, 180.0)
        self._first_step_m = cell_size_m
        # cell -> {code: (x, y, z, store)}; code -> cell, to find a store again on update/remove
        self._cells: dict[tuple[int, int], dict[str, tuple[float, float, float, IndexedStore]]] = {}
        self._cell_of: dict[str, tuple[int, int]] = {}
        for store in stores:
            self.upsert(store)

    def __len__(self) -> int:
        return len(self._cell_of)

    def __contains__(self, code: object) -> bool:
        return code in self._cell_of

    def get(self, code: str) -> IndexedStore | None:
        cell = self._cell_of.get(code)
        return None if cell is None else self._cells[cell][code][3]

    def upsert(self, store: IndexedStore) -> None:
        """Add a store, or move/replace the one with the same code."""
        self.remove(store.code)
        cell = self._cell(store.lat, store.lng)
        self._cells.setdefault(cell, {})[store.code] = (*_unit_vector(store.lat, store.lng), store)
        self._cell_of[store.code] = cell

    def remove(self, code: str) -> bool:
        """Drop a store; False when it was not indexed."""
        cell = self._cell_of.pop(code, None)
        if cell is None:
            return False
        bucket = self._cells[cell]
        del bucket[code]
        if not bucket:
            del self._cells[cell]
        return True

    def nearest(
        self,
        lat: float,
        lng: float,
        radius_m: float,
        limit: int = 5,
        accept: Callable[[IndexedStore], bool] | None = None,
    ) -> list[tuple[IndexedStore, float]]:
        """Up to `limit` stores within `radius_m` of a GCJ-02 point, nearest first, as (store, metres).

        Stores for which `accept(store)` is false (e.g. closed now) are skipped; `accept` is called
        nearest first, at most once per store, and only as far as needed to find `limit` stores.
        """
        lat, lng = validate_coordinates(lat, lng)
        if not (radius_m >= 0 and math.isfinite(radius_m)):
            raise ValueError(f"radius_m must be a finite non-negative number, got {radius_m!r}")
        if limit <= 0 or not self._cells:
            return []
        verdicts: dict[str, bool] = {}

        def accepted(store: IndexedStore) -> bool:
            if accept is None:
                return True
            if store.code not in verdicts:
                verdicts[store.code] = bool(accept(store))
            return verdicts[store.code]

        # Whatever lies beyond step_m is farther than everything found within it, so `limit`
        # stores found within a step are the answer; otherwise widen the step.
        step_m = min(radius_m, self._first_step_m)
        while True:
            found = self._nearest_within(lat, lng, step_m, limit, accepted)
            if len(found) == limit or step_m >= radius_m:
                return found
            step_m = min(radius_m, step_m * 2.0)

    def _nearest_within(
        self, lat: float, lng: float, radius_m: float, limit: int, accepted: Callable[[IndexedStore], bool]
    ) -> list[tuple[IndexedStore, float]]:
        qx, qy, qz = _unit_vector(lat, lng)
        angle = radius_m / EARTH_RADIUS_M
        max_chord_sq = (2.0 * math.sin(min(angle, math.pi) / 2.0) + _CHORD_SLACK) ** 2
        candidates = []
        for bucket in self._buckets_near(lat, lng, angle):
            for x, y, z, store in bucket.values():
                dx, dy, dz = x - qx, y - qy, z - qz
                chord_sq = dx * dx + dy * dy + dz * dz
                if chord_sq <= max_chord_sq:
                    candidates.append((chord_sq, store.code, store))
        candidates.sort()  # the code breaks ties so equal distances come out in a stable order
        found: list[tuple[IndexedStore, float]] = []
        for _, _, store in candidates:
            distance = haversine_m(lat, lng, store.lat, store.lng)
            if distance > radius_m or not accepted(store):
                continue
            found.append((store, distance))
            if len(found) == limit:
                break
        # Chord and haversine may round a near-tie differently; the distances shown must ascend.
        found.sort(key=lambda item: item[1])
        return found

    def _row(self, lat: float) -> int:
        return math.floor((lat + 90.0) / self._row_deg)

    def _col_unwrapped(self, lng: float) -> int:
        return math.floor((lng + 180.0) / self._col_deg)

    def _cell(self, lat: float, lng: float) -> tuple[int, int]:
        return self._row(lat), self._col_unwrapped(lng) % self._n_cols

    def _buckets_near(self, lat: float, lng: float, angle: float) -> Iterable[dict]:
        """The non-empty cells that may hold a point within `angle` radians of (lat, lng)."""
        dlat = math.degrees(angle) + _MARGIN_DEG
        lat_lo, lat_hi = max(lat - dlat, -90.0), min(lat + dlat, 90.0)
        rows = range(self._row(lat_lo), self._row(lat_hi) + 1)
        # Longitude half-width of the spherical cap: asin(sin r / cos lat), reached off the query's own
        # parallel. It is ill-conditioned as the cap nears a pole, so within a degree of one (where
        # stores are hypothetical anyway) every longitude is taken.
        if lat_hi > 89.0 or lat_lo < -89.0:
            cols: range | list[int] = range(self._n_cols)
        else:
            ratio = math.sin(angle) / math.cos(math.radians(lat))
            dlng = math.degrees(math.asin(ratio)) + _MARGIN_DEG
            col_lo, col_hi = self._col_unwrapped(lng - dlng), self._col_unwrapped(lng + dlng)
            if col_hi - col_lo + 1 >= self._n_cols:
                cols = range(self._n_cols)
            else:
                cols = [col % self._n_cols for col in range(col_lo, col_hi + 1)]
        # A huge patch (big radius, or near a pole) has more cells than there are stores: scan those.
        if len(rows) * len(cols) > len(self._cells):
            row_set, col_set = set(rows), set(cols)
            return [b for (r, c), b in self._cells.items() if r in row_set and c in col_set]
        cells = self._cells
        return [cells[(r, c)] for r in rows for c in cols if (r, c) in cells]
