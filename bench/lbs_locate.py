"""Benchmark StoreIndex.nearest() against a brute-force haversine scan over the same stores.

    .venv/bin/python bench/lbs_locate.py [--stores 10000] [--queries 20000] [--radius-m 5000]

Stores and customers cluster around big cities (as real ones do, and where the index has the
most to compare); a share is spread over the whole country. Both methods answer the same
queries and the script checks they agree.
"""

from __future__ import annotations

import argparse
import gc
import random
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.lbs.datum import haversine_m  # noqa: E402
from bot.lbs.nearest import IndexedStore, StoreIndex  # noqa: E402

# (lat, lng, relative store count): rough GCJ-02 centres of large cities.
CITIES = [
    (31.2304, 121.4737, 10),
    (39.9042, 116.4074, 10),
    (23.1291, 113.2644, 8),
    (22.5431, 114.0579, 8),
    (30.5728, 104.0668, 7),
    (29.5630, 106.5516, 6),
    (30.2741, 120.1551, 6),
    (30.5928, 114.3055, 6),
    (34.3416, 108.9398, 5),
    (32.0603, 118.7969, 5),
    (39.3434, 117.3616, 5),
    (28.2282, 112.9388, 4),
    (34.7466, 113.6254, 4),
    (36.0671, 120.3826, 4),
    (31.2989, 120.5853, 4),
    (41.8057, 123.4315, 3),
    (38.0428, 114.5149, 3),
    (26.0745, 119.2965, 3),
    (24.4798, 118.0894, 3),
    (25.0389, 102.7183, 3),
    (45.8038, 126.5350, 3),
    (43.8171, 125.3235, 2),
    (36.6512, 117.1201, 3),
    (28.6820, 115.8579, 2),
    (22.8170, 108.3665, 2),
    (26.6470, 106.6302, 2),
    (37.8706, 112.5489, 2),
    (36.0611, 103.8343, 2),
    (43.8256, 87.6168, 1),
    (20.0440, 110.1999, 1),
    (29.6500, 91.1000, 1),
    (40.8424, 111.7490, 1),
]
CITY_SIGMA_DEG = 0.12  # about 13 km: most stores within a metro area
CHINA_BOX = ((20.0, 48.0), (80.0, 130.0))


def random_point(rng: random.Random, spread_share: float) -> tuple[float, float]:
    if rng.random() < spread_share:
        (lat_lo, lat_hi), (lng_lo, lng_hi) = CHINA_BOX
        return rng.uniform(lat_lo, lat_hi), rng.uniform(lng_lo, lng_hi)
    lat, lng, _ = rng.choices(CITIES, weights=[w for *_, w in CITIES])[0]
    return rng.gauss(lat, CITY_SIGMA_DEG), rng.gauss(lng, CITY_SIGMA_DEG)


def brute_force(stores, lat, lng, radius_m, limit, accept):
    hits = [(haversine_m(lat, lng, s.lat, s.lng), s.code, s) for s in stores]
    hits = sorted(h for h in hits if h[0] <= radius_m and accept(h[2]))
    return [(store, distance) for distance, _, store in hits[:limit]]


def time_queries(run, queries) -> tuple[list[float], list]:
    gc.collect()
    timings, answers = [], []
    for lat, lng in queries:
        start = time.perf_counter_ns()
        answer = run(lat, lng)
        timings.append((time.perf_counter_ns() - start) / 1000.0)
        answers.append(answer)
    return timings, answers


def summary(timings: list[float]) -> tuple[float, float, float]:
    ordered = sorted(timings)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.50), pick(0.99), ordered[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--radius-m", type=float, default=5_000.0)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--cell-size-m", type=float, default=5_000.0)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    print("$", shlex.join([Path(sys.executable).name, *sys.argv]))

    rng = random.Random(args.seed)
    stores = [IndexedStore(f"S{i:05d}", *random_point(rng, spread_share=0.15)) for i in range(args.stores)]
    open_codes = {s.code for s in stores if rng.random() < 0.8}  # one store in five closed right now
    is_open = lambda store: store.code in open_codes  # noqa: E731
    queries = [random_point(rng, spread_share=0.10) for _ in range(args.queries)]

    start = time.perf_counter()
    index = StoreIndex(stores, cell_size_m=args.cell_size_m)
    build_ms = (time.perf_counter() - start) * 1000
    print(
        f"{len(stores)} stores, {len(queries)} queries, radius {args.radius_m:.0f} m, limit {args.limit}, "
        f"cell {args.cell_size_m:.0f} m; index built in {build_ms:.0f} ms"
    )

    index_t, index_answers = time_queries(
        lambda lat, lng: index.nearest(lat, lng, args.radius_m, args.limit, accept=is_open), queries
    )
    brute_t, brute_answers = time_queries(
        lambda lat, lng: brute_force(stores, lat, lng, args.radius_m, args.limit, is_open), queries
    )

    mismatches = sum(
        [s.code for s, _ in a] != [s.code for s, _ in b]
        for a, b in zip(index_answers, brute_answers, strict=True)
    )
    found = sum(bool(a) for a in index_answers)
    print(f"queries with a store in range: {found}; answers differing from brute force: {mismatches}")
    print(f"{'method':<12}{'p50 µs':>10}{'p99 µs':>10}{'max µs':>10}")
    for name, timings in (("index", index_t), ("brute force", brute_t)):
        print(f"{name:<12}" + "".join(f"{v:>10.1f}" for v in summary(timings)))
    (i50, i99, _), (b50, b99, _) = summary(index_t), summary(brute_t)
    print(f"brute force / index: p50 x{b50 / i50:.0f}, p99 x{b99 / i99:.0f}")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
