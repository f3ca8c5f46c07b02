"""StoreIndex against a brute-force haversine scan, everywhere on the globe."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.lbs.datum import InvalidCoordinates, haversine_m
from bot.lbs.nearest import IndexedStore, StoreIndex

BEIJING = (39.9087, 116.3975)


def brute_force(stores, lat, lng, radius_m, limit=5, accept=None):
    hits = [(haversine_m(lat, lng, s.lat, s.lng), s.code, s) for s in stores]
    hits = sorted(h for h in hits if h[0] <= radius_m and (accept is None or accept(h[2])))
    return [(store, distance) for distance, _, store in hits[:limit]]


def assert_same_answer(query, got, want):
    """Equal distances in order; equal stores except where a tie at the cut-off allows either."""
    assert [d for _, d in got] == pytest.approx([d for _, d in want], abs=1e-6)
    if got:
        cut = got[-1][1] - 1e-6
        assert {s.code for s, d in got if d < cut} == {s.code for s, d in want if d < cut}
    for store, distance in got:
        assert distance == haversine_m(*query, store.lat, store.lng)


latitudes = st.floats(min_value=-90.0, max_value=90.0)
longitudes = st.floats(min_value=-180.0, max_value=180.0)
polar_latitudes = st.one_of(
    st.floats(min_value=80.0, max_value=90.0), st.floats(min_value=-90.0, max_value=-80.0)
)
antimeridian_longitudes = st.one_of(
    st.floats(min_value=178.0, max_value=180.0), st.floats(min_value=-180.0, max_value=-178.0)
)
china_points = st.tuples(
    st.floats(min_value=18.0, max_value=53.0), st.floats(min_value=74.0, max_value=135.0)
)
anywhere = st.tuples(latitudes, longitudes)
near_pole = st.tuples(polar_latitudes, longitudes)
near_antimeridian = st.tuples(latitudes, antimeridian_longitudes)
points = st.one_of(anywhere, near_pole, near_antimeridian, china_points)
radii = st.one_of(
    st.floats(min_value=0.0, max_value=50_000.0),
    st.floats(min_value=0.0, max_value=3_000_000.0),
    st.sampled_from([0.0, 1.0, 5_000.0, 20_015_087.0, 1e9]),  # 20,015 km: half the circumference
)
cell_sizes = st.sampled_from([500.0, 5_000.0, 200_000.0])


def make_stores(coords):
    return [IndexedStore(f"S{i:04d}", lat, lng) for i, (lat, lng) in enumerate(coords)]


@settings(max_examples=300, deadline=None)
@given(
    coords=st.lists(points, max_size=60),
    query=points,
    radius_m=radii,
    limit=st.integers(min_value=1, max_value=8),
    cell_size_m=cell_sizes,
)
def test_matches_brute_force_anywhere(coords, query, radius_m, limit, cell_size_m):
    stores = make_stores(coords)
    index = StoreIndex(stores, cell_size_m=cell_size_m)
    assert_same_answer(
        query, index.nearest(*query, radius_m, limit), brute_force(stores, *query, radius_m, limit)
    )


@settings(max_examples=200, deadline=None)
@given(
    cluster=st.one_of(near_pole, near_antimeridian, china_points),
    offsets=st.lists(st.tuples(st.floats(-0.5, 0.5), st.floats(-3.0, 3.0)), min_size=1, max_size=60),
    query_offset=st.tuples(st.floats(-0.5, 0.5), st.floats(-3.0, 3.0)),
    radius_m=st.floats(min_value=0.0, max_value=100_000.0),
)
def test_matches_brute_force_in_a_dense_cluster(cluster, offsets, query_offset, radius_m):
    """Stores and customer a few km apart, where most answers are non-trivial."""

    def shifted(dlat, dlng):
        lat = max(-90.0, min(90.0, cluster[0] + dlat))
        return lat, (cluster[1] + dlng + 180.0) % 360.0 - 180.0  # wraps across ±180°

    stores = make_stores(shifted(*o) for o in offsets)
    query = shifted(*query_offset)
    got = StoreIndex(stores, cell_size_m=2_000.0).nearest(*query, radius_m, limit=5)
    assert_same_answer(query, got, brute_force(stores, *query, radius_m, 5))


def test_nearest_first_and_only_within_radius():
    stores = [IndexedStore("far", 39.95, 116.3975), IndexedStore("near", 39.91, 116.3975)]
    got = StoreIndex(stores).nearest(*BEIJING, radius_m=10_000)
    assert [s.code for s, _ in got] == ["near", "far"]
    assert got[0][1] == pytest.approx(144.6, abs=0.5)
    assert [s.code for s, _ in StoreIndex(stores).nearest(*BEIJING, radius_m=1_000)] == ["near"]


def test_store_exactly_on_the_radius_is_included():
    store = IndexedStore("edge", 39.95, 116.45)
    distance = haversine_m(*BEIJING, store.lat, store.lng)
    index = StoreIndex([store])
    assert [s.code for s, _ in index.nearest(*BEIJING, radius_m=distance)] == ["edge"]
    assert index.nearest(*BEIJING, radius_m=math.nextafter(distance, 0.0)) == []


def test_across_the_antimeridian():
    index = StoreIndex([IndexedStore("fiji-east", -17.0, -179.99), IndexedStore("fiji-west", -17.0, 179.5)])
    got = index.nearest(-17.0, 179.99, radius_m=5_000)
    assert [s.code for s, _ in got] == ["fiji-east"]
    assert got[0][1] == pytest.approx(2_127, abs=2)


def test_near_the_pole_a_store_on_the_other_side_is_close():
    index = StoreIndex([IndexedStore("other-side", 89.99, 180.0)])
    got = index.nearest(89.99, 0.0, radius_m=3_000)
    assert got and got[0][1] == pytest.approx(2_224, abs=2)


def test_accept_filter_skips_closed_stores_and_is_asked_nearest_first():
    stores = [IndexedStore(f"S{i}", 39.9087 + i * 0.001, 116.3975) for i in range(10)]
    asked = []

    def is_open(store):
        asked.append(store.code)
        return store.code not in {"S0", "S2"}

    got = StoreIndex(stores).nearest(*BEIJING, radius_m=5_000, limit=2, accept=is_open)
    assert [s.code for s, _ in got] == ["S1", "S3"]
    assert asked == ["S0", "S1", "S2", "S3"]


def test_accept_is_asked_once_per_store_while_the_search_widens():
    # 1 km and 8 km north; the first search step (one 5 km cell) holds only the closed store.
    stores = [IndexedStore("closed", 39.9177, 116.3975), IndexedStore("open", 39.9807, 116.3975)]
    asked = []

    def is_open(store):
        asked.append(store.code)
        return store.code == "open"

    got = StoreIndex(stores, cell_size_m=5_000).nearest(*BEIJING, radius_m=20_000, limit=1, accept=is_open)
    assert [s.code for s, _ in got] == ["open"]
    assert got[0][1] == pytest.approx(8_006, abs=5)
    assert asked == ["closed", "open"]


def test_empty_index_and_zero_limit():
    assert StoreIndex().nearest(*BEIJING, radius_m=1e9) == []
    assert StoreIndex([IndexedStore("a", *BEIJING)]).nearest(*BEIJING, radius_m=100, limit=0) == []


def test_upsert_moves_a_store_and_remove_drops_it():
    index = StoreIndex([IndexedStore("a", *BEIJING), IndexedStore("b", 31.2304, 121.4737)])
    index.upsert(IndexedStore("a", 31.2305, 121.4737))  # moved to Shanghai by the admin API
    assert len(index) == 2
    assert index.nearest(*BEIJING, radius_m=50_000) == []
    assert [s.code for s, _ in index.nearest(31.2304, 121.4737, radius_m=50_000)] == ["b", "a"]
    assert index.remove("b") is True
    assert index.remove("b") is False
    assert "b" not in index and index.get("a") == IndexedStore("a", 31.2305, 121.4737)
    assert [s.code for s, _ in index.nearest(31.2304, 121.4737, radius_m=50_000)] == ["a"]
    index.upsert(IndexedStore("c", 31.2306, 121.4737))
    assert [s.code for s, _ in index.nearest(31.2304, 121.4737, radius_m=50_000)] == ["a", "c"]


@settings(max_examples=100, deadline=None)
@given(
    initial=st.lists(china_points, max_size=30),
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=40), st.one_of(st.none(), china_points)), max_size=30
    ),
    query=china_points,
)
def test_edits_agree_with_a_rebuild(initial, edits, query):
    index = StoreIndex(make_stores(initial), cell_size_m=50_000.0)
    current = {s.code: s for s in make_stores(initial)}
    for number, point in edits:
        code = f"S{number:04d}"
        if point is None:
            index.remove(code)
            current.pop(code, None)
        else:
            current[code] = IndexedStore(code, *point)
            index.upsert(current[code])
    assert len(index) == len(current)
    got = index.nearest(*query, radius_m=500_000, limit=8)
    assert_same_answer(query, got, StoreIndex(current.values()).nearest(*query, radius_m=500_000, limit=8))
    assert_same_answer(query, got, brute_force(list(current.values()), *query, 500_000, 8))


@pytest.mark.parametrize(("lat", "lng"), [(91.0, 0.0), (0.0, float("nan")), ("39.9", 116.4)])
def test_bad_coordinates_are_rejected_with_a_clear_error(lat, lng):
    with pytest.raises(InvalidCoordinates):
        IndexedStore("x", lat, lng)
    with pytest.raises(InvalidCoordinates):
        StoreIndex().nearest(lat, lng, radius_m=100)


@pytest.mark.parametrize("radius_m", [-1.0, float("nan"), float("inf")])
def test_bad_radius_is_rejected(radius_m):
    with pytest.raises(ValueError, match="radius_m must be a finite non-negative number"):
        StoreIndex().nearest(*BEIJING, radius_m=radius_m)


def test_bad_cell_size_is_rejected():
    with pytest.raises(ValueError, match="cell_size_m must be positive"):
        StoreIndex(cell_size_m=0)
