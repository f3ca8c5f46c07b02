"""Map datums used in China and conversions between them; great-circle distance.

Storage keeps one datum, GCJ-02: what WeChat `getLocation(type: 'gcj02')`, Tencent and AMap
report. WGS-84 (GPS, browsers) and BD-09 (Baidu maps) are converted at the edges; mixing them
silently puts a customer several hundred metres off.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from numbers import Real

# Krasovsky 1940 ellipsoid: the GCJ-02 obfuscation is defined on it, not on WGS-84's.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
# IUGG mean Earth radius: the best single radius for a spherical distance.
EARTH_RADIUS_M = 6371008.8

# The inverse transforms have no exact closed form; iterate until the forward one lands this close.
_INVERSE_TOLERANCE_DEG = 1e-9
_INVERSE_MAX_STEPS = 30


class CoordSystem(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


class InvalidCoordinates(ValueError):
    """A latitude/longitude pair that is not a point on Earth."""


def validate_coordinates(lat: object, lng: object) -> tuple[float, float]:
    """Return (lat, lng) as floats, or raise InvalidCoordinates saying what is wrong."""
    for name, value in (("latitude", lat), ("longitude", lng)):
        # bool is an int subclass; True as a coordinate is always a bug upstream.
        if isinstance(value, bool) or not isinstance(value, Real):
            raise InvalidCoordinates(f"{name} must be a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise InvalidCoordinates(f"{name} must be finite, got {value!r}")
    if not -90.0 <= lat <= 90.0:
        raise InvalidCoordinates(f"latitude must be within [-90, 90], got {lat!r}")
    if not -180.0 <= lng <= 180.0:
        raise InvalidCoordinates(f"longitude must be within [-180, 180], got {lng!r}")
    return float(lat), float(lng)


def out_of_china(lat: float, lng: float) -> bool:
    """True outside the rough bounding box where GCJ-02 applies (there GCJ-02 = WGS-84).

    A box, not the border polygon (same box as coordtransform/eviltransform): it includes Hong
    Kong, Macau, Taiwan and parts of neighbouring countries (Seoul, Hanoi, even Singapore), which
    get offset although their own maps are not GCJ-02. Good enough for mainland stores; outside
    the mainland, enter a store's position as the brand's map shows it, in GCJ-02.
    """
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _offset_polynomial(x: float, y: float) -> tuple[float, float]:
    """The published GCJ-02 offset polynomial, before scaling to degrees; x = lng-105, y = lat-35."""
    common = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += common
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlng += common
    dlng += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlng += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return dlat, dlng


def _wgs84_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    if out_of_china(lat, lng):
        return lat, lng
    dlat, dlng = _offset_polynomial(lng - 105.0, lat - 35.0)
    rad_lat = math.radians(lat)
    magic = 1.0 - _KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlng = (dlng * 180.0) / (_KRASOVSKY_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lat + dlat, lng + dlng


def _invert(
    forward: Callable[[float, float], tuple[float, float]], lat: float, lng: float, guess: tuple[float, float]
) -> tuple[float, float]:
    """Solve forward(p) == (lat, lng) by fixed-point iteration from `guess`.

    The offsets vary slowly with position, so each step gains several digits; a handful of steps
    reach the tolerance, where a one-step inverse is off by up to ~5 m (WGS) or 0.2 m (BD).
    """
    src_lat, src_lng = guess
    for _ in range(_INVERSE_MAX_STEPS):
        fwd_lat, fwd_lng = forward(src_lat, src_lng)
        err_lat, err_lng = fwd_lat - lat, fwd_lng - lng
        src_lat, src_lng = src_lat - err_lat, src_lng - err_lng
        if abs(err_lat) < _INVERSE_TOLERANCE_DEG and abs(err_lng) < _INVERSE_TOLERANCE_DEG:
            break
    return src_lat, src_lng


def _gcj02_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    if out_of_china(lat, lng):
        return lat, lng
    return _invert(_wgs84_to_gcj02, lat, lng, guess=(lat, lng))


def _gcj02_to_bd09(lat: float, lng: float) -> tuple[float, float]:
    # Baidu applies its extra offset only where GCJ-02 applies; elsewhere leave the point alone
    # (also keeps points near the antimeridian from being pushed past 180).
    if out_of_china(lat, lng):
        return lat, lng
    z = math.hypot(lng, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * _X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def _bd09_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    if out_of_china(lat, lng):
        return lat, lng
    # The published BD->GCJ formula only approximates the inverse of GCJ->BD (round trip off by
    # up to 2e-6 deg); it is the starting guess, refined so both directions agree.
    x, y = lng - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return _invert(_gcj02_to_bd09, lat, lng, guess=(z * math.sin(theta), z * math.cos(theta)))


def to_gcj02(lat: float, lng: float, system: CoordSystem | str) -> tuple[float, float]:
    """Convert a point given in `system` to GCJ-02 (the stored datum)."""
    lat, lng = validate_coordinates(lat, lng)
    system = CoordSystem(system)
    if system is CoordSystem.WGS84:
        return _wgs84_to_gcj02(lat, lng)
    if system is CoordSystem.BD09:
        return _bd09_to_gcj02(lat, lng)
    return lat, lng


def from_gcj02(lat: float, lng: float, system: CoordSystem | str) -> tuple[float, float]:
    """Convert a stored GCJ-02 point to `system` (e.g. BD-09 to place it on a Baidu map)."""
    lat, lng = validate_coordinates(lat, lng)
    system = CoordSystem(system)
    if system is CoordSystem.WGS84:
        return _gcj02_to_wgs84(lat, lng)
    if system is CoordSystem.BD09:
        return _gcj02_to_bd09(lat, lng)
    return lat, lng


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres on a spherical Earth (error < 0.5% against the ellipsoid)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    sin_dphi = math.sin((phi2 - phi1) / 2.0)
    sin_dlmb = math.sin(math.radians(lng2 - lng1) / 2.0)
    h = sin_dphi * sin_dphi + math.cos(phi1) * math.cos(phi2) * sin_dlmb * sin_dlmb
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))
