"""Datum conversions against published vectors, round trips, and distances."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.lbs.datum import (
    CoordSystem,
    InvalidCoordinates,
    from_gcj02,
    haversine_m,
    out_of_china,
    to_gcj02,
    validate_coordinates,
)

# (wgs_lat, wgs_lng, gcj_lat, gcj_lng) from googollee/eviltransform python/test.py.
# (Its BD-09 vectors are not used: they were produced by an old version that had pi where x_pi belongs.)
EVILTRANSFORM_WGS_TO_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
# wandergis/coordtransform test/app.js: every conversion applied to (39.915, 116.404), near Tiananmen.
TIANANMEN = (39.915, 116.404)
COORDTRANSFORM_WGS_TO_GCJ = (39.91640428150164, 116.41024449916938)
COORDTRANSFORM_GCJ_TO_BD = (39.92133699351021, 116.41036949371029)
COORDTRANSFORM_BD_TO_GCJ = (39.90865673957631, 116.39762729119315)
COORDTRANSFORM_GCJ_TO_WGS_ONE_STEP = (39.91359571849836, 116.39775550083061)

# Well inside the GCJ-02 box, so an offset never carries a point across its edge.
china_lat = st.floats(min_value=18.0, max_value=53.0)
china_lng = st.floats(min_value=74.0, max_value=135.0)


@pytest.mark.parametrize(("wgs_lat", "wgs_lng", "gcj_lat", "gcj_lng"), EVILTRANSFORM_WGS_TO_GCJ)
def test_wgs84_to_gcj02_matches_eviltransform(wgs_lat, wgs_lng, gcj_lat, gcj_lng):
    assert to_gcj02(wgs_lat, wgs_lng, CoordSystem.WGS84) == pytest.approx((gcj_lat, gcj_lng), abs=1e-9)


@pytest.mark.parametrize(("wgs_lat", "wgs_lng", "gcj_lat", "gcj_lng"), EVILTRANSFORM_WGS_TO_GCJ)
def test_gcj02_to_wgs84_inverts_eviltransform_pairs(wgs_lat, wgs_lng, gcj_lat, gcj_lng):
    assert from_gcj02(gcj_lat, gcj_lng, "wgs84") == pytest.approx((wgs_lat, wgs_lng), abs=1e-7)


def test_tiananmen_matches_coordtransform():
    assert to_gcj02(*TIANANMEN, "wgs84") == pytest.approx(COORDTRANSFORM_WGS_TO_GCJ, abs=1e-9)
    assert from_gcj02(*TIANANMEN, "bd09") == pytest.approx(COORDTRANSFORM_GCJ_TO_BD, abs=1e-9)
    # Its BD->GCJ is the one-step formula; ours refines it, so they agree to ~5 cm, not to the digit.
    assert to_gcj02(*TIANANMEN, "bd09") == pytest.approx(COORDTRANSFORM_BD_TO_GCJ, abs=1e-6)


def test_gcj02_to_wgs84_iterates_past_the_one_step_approximation():
    exact = from_gcj02(*TIANANMEN, "wgs84")
    # The exact inverse maps back onto the input; the published one-step answer misses by centimetres.
    assert to_gcj02(*exact, "wgs84") == pytest.approx(TIANANMEN, abs=1e-9)
    one_step_back = to_gcj02(*COORDTRANSFORM_GCJ_TO_WGS_ONE_STEP, "wgs84")
    assert max(abs(a - b) for a, b in zip(one_step_back, TIANANMEN, strict=True)) > 1e-7
    assert haversine_m(*exact, *COORDTRANSFORM_GCJ_TO_WGS_ONE_STEP) < 1.0


def test_mixing_datums_in_beijing_is_hundreds_of_metres_off():
    gcj = to_gcj02(*TIANANMEN, "wgs84")
    bd = from_gcj02(*TIANANMEN, "bd09")
    assert 300 < haversine_m(*TIANANMEN, *gcj) < 700
    assert 300 < haversine_m(*TIANANMEN, *bd) < 1500
    assert 700 < haversine_m(*from_gcj02(*TIANANMEN, "wgs84"), *bd) < 2000  # WGS read as BD, Baidu map


@given(china_lat, china_lng)
def test_wgs84_round_trip_within_a_tenth_of_a_metre(lat, lng):
    back = from_gcj02(*to_gcj02(lat, lng, "wgs84"), "wgs84")
    assert back == pytest.approx((lat, lng), abs=1e-6)
    assert haversine_m(lat, lng, *back) < 0.1


@given(china_lat, china_lng)
def test_bd09_round_trip_within_a_tenth_of_a_metre(lat, lng):
    back = to_gcj02(*from_gcj02(lat, lng, "bd09"), "bd09")
    assert back == pytest.approx((lat, lng), abs=1e-6)
    assert haversine_m(lat, lng, *back) < 0.1


@pytest.mark.parametrize(
    "point",
    [
        (48.8566, 2.3522),
        (-33.8688, 151.2093),
        (40.7128, -74.0060),
        (51.5074, -0.1278),
        (0.0, 180.0),
        (90.0, 0.0),
    ],
)
@pytest.mark.parametrize("system", list(CoordSystem))
def test_outside_china_every_datum_is_wgs84(point, system):
    assert out_of_china(*point)
    assert to_gcj02(*point, system) == point
    assert from_gcj02(*point, system) == point


def test_china_is_a_box_so_nearby_capitals_are_offset_too():
    # Documents the known limitation rather than endorsing it: Seoul and Singapore fall inside.
    assert not out_of_china(37.5665, 126.9780)
    assert not out_of_china(1.3521, 103.8198)
    assert not out_of_china(22.3193, 114.1694)  # Hong Kong, whose own maps are WGS-84


def test_gcj02_is_stored_unchanged():
    assert to_gcj02(*TIANANMEN, "gcj02") == TIANANMEN
    assert from_gcj02(*TIANANMEN, CoordSystem.GCJ02) == TIANANMEN


@pytest.mark.parametrize(
    ("lat", "lng", "message"),
    [
        ("39.9", 116.4, "latitude must be a number, got str"),
        (39.9, None, "longitude must be a number, got NoneType"),
        (True, 116.4, "latitude must be a number, got bool"),
        (float("nan"), 116.4, "latitude must be finite"),
        (39.9, float("inf"), "longitude must be finite"),
        (90.0001, 116.4, r"latitude must be within \[-90, 90\], got 90.0001"),
        (39.9, -180.5, r"longitude must be within \[-180, 180\], got -180.5"),
    ],
)
def test_invalid_coordinates_say_what_is_wrong(lat, lng, message):
    with pytest.raises(InvalidCoordinates, match=message):
        validate_coordinates(lat, lng)
    with pytest.raises(ValueError, match=message):  # callers may catch the plain ValueError
        to_gcj02(lat, lng, "wgs84")


def test_unknown_datum_is_rejected():
    with pytest.raises(ValueError, match="'wgs-84' is not a valid CoordSystem"):
        to_gcj02(*TIANANMEN, "wgs-84")


def test_validate_returns_floats():
    assert validate_coordinates(40, -74) == (40.0, -74.0)
    assert type(validate_coordinates(40, -74)[0]) is float


def test_haversine_beijing_to_shanghai():
    # People's Square, Shanghai to Tiananmen: about 1,067 km great-circle.
    assert haversine_m(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(1_067_000, rel=0.005)


def test_haversine_one_degree_of_latitude():
    assert haversine_m(10.0, 20.0, 11.0, 20.0) == pytest.approx(111_195, abs=1)


def test_haversine_longitude_shrinks_with_latitude():
    # A flat "degrees times 111 km" distance would give the same figure at both latitudes.
    at_equator = haversine_m(0.0, 0.0, 0.0, 1.0)
    at_60_north = haversine_m(60.0, 0.0, 60.0, 1.0)
    assert at_60_north == pytest.approx(at_equator / 2, rel=1e-3)


def test_haversine_across_the_antimeridian_and_to_the_antipode():
    assert haversine_m(0.0, 179.9, 0.0, -179.9) == pytest.approx(22_239, abs=1)
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * 6_371_008.8)
    assert haversine_m(89.9, 0.0, 89.9, 180.0) == pytest.approx(22_239, abs=1)
