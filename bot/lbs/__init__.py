"""Location: datums used in China (stored as GCJ-02) and the nearest-open-store index."""

from bot.lbs.datum import (
    CoordSystem,
    InvalidCoordinates,
    from_gcj02,
    haversine_m,
    out_of_china,
    to_gcj02,
    validate_coordinates,
)
from bot.lbs.nearest import IndexedStore, StoreIndex

__all__ = [
    "CoordSystem",
    "IndexedStore",
    "InvalidCoordinates",
    "StoreIndex",
    "from_gcj02",
    "haversine_m",
    "out_of_china",
    "to_gcj02",
    "validate_coordinates",
]
