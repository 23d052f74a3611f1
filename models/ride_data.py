#!/usr/bin/python3
"""Synthetic taxi rides: the data the ride-duration model is trained and tested on.

Usage:
  ride_data.py --events N [--seed S] [--start-id K] [-o PATH]
      N ride events as JSONL, in the shape the ride flow reads:
      {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 123}
      ride_id runs from K (default 1) upwards.
  ride_data.py --features N [--seed S] [-o PATH]
      N feature rows as JSONL, the model's inputs as the pipeline computes them:
      {"PU_DO": "130_205", "trip_distance": 3.66}

Output goes to stdout unless -o is given. The same seed always gives the same rows.

The city is fixed (it does not depend on the seed): 265 zones, as in the NYC TLC zone map, each
in one of six "boroughs" with a typical driving speed, and each with its own popularity and speed
factor. A ride:
  - pickup zone: drawn by popularity (borough weight x a log-normal per-zone factor, sigma 1);
  - dropoff zone: with probability 0.6 a zone of the pickup's borough, else any zone, both by
    popularity;
  - trip_distance (miles): log-normal, median 1.8 within a borough and 5.5 across boroughs,
    sigma 0.6; rounded to 0.01 and clipped to [0.1, 60];
  - duration (minutes): 2 minutes of pickup overhead, plus distance / speed, where speed is the
    mean of the two zones' speeds (borough speed x zone factor, log-normal sigma 0.2), plus 7
    minutes for a trip across boroughs (bridges, tunnels); times log-normal noise (sigma 0.12);
    clipped to [1, 180].
So the zone pair carries signal of its own: two rides of the same distance take different times
in Manhattan and on Staten Island, and crossing a borough line costs time.
"""
import argparse
import sys

import numpy as np

NUM_ZONES = 265
# The city's layout comes from its own generator, so every seed samples rides of the same city.
CITY_SEED = 20260101

# Borough: share of zones, pickup popularity weight, typical speed in mph.
BOROUGHS = [
    ("Manhattan", 0.26, 6.0, 8.0),
    ("Brooklyn", 0.23, 1.5, 13.0),
    ("Queens", 0.26, 1.2, 17.0),
    ("Bronx", 0.16, 0.6, 14.0),
    ("Staten Island", 0.08, 0.1, 22.0),
    ("EWR", 0.01, 0.3, 26.0),
]
POPULARITY_SIGMA = 1.4
SAME_BOROUGH_DROPOFF = 0.7
DISTANCE_MEDIAN_SAME = 1.8
DISTANCE_MEDIAN_CROSS = 5.5
DISTANCE_SIGMA = 0.6
DISTANCE_RANGE = (0.1, 60.0)
PICKUP_MINUTES = 2.0
CROSSING_MINUTES = 7.0
ZONE_SPEED_SIGMA = 0.2
NOISE_SIGMA = 0.12
DURATION_RANGE = (1.0, 180.0)
# Rows generated and formatted per chunk when writing: bounds memory for any N.
CHUNK = 200_000


class City:
    """The fixed zone map: borough, popularity and speed of zones 1..265 (index 0 unused)."""

    def __init__(self):
        rng = np.random.default_rng(CITY_SEED)
        shares = np.array([b[1] for b in BOROUGHS])
        counts = np.floor(shares * NUM_ZONES).astype(int)
        counts[0] += NUM_ZONES - counts.sum()
        borough = np.repeat(np.arange(len(BOROUGHS)), counts)
        rng.shuffle(borough)
        self.borough = np.concatenate([[0], borough])
        weight = np.array([b[2] for b in BOROUGHS])[self.borough]
        popularity = weight * rng.lognormal(0.0, POPULARITY_SIGMA, NUM_ZONES + 1)
        popularity[0] = 0.0
        self.popularity = popularity / popularity.sum()
        speed = np.array([b[3] for b in BOROUGHS])[self.borough]
        self.speed = speed * rng.lognormal(0.0, ZONE_SPEED_SIGMA, NUM_ZONES + 1)
        # Per borough: its zones and their popularity, for same-borough dropoffs.
        self.zones_of = []
        for b in range(len(BOROUGHS)):
            zones = np.flatnonzero(self.borough == b)
            zones = zones[zones > 0]
            p = self.popularity[zones]
            self.zones_of.append((zones, p / p.sum()))


CITY = City()


def generate(n, seed=0):
    """n rides as numpy arrays: pu, do (int64 zone ids), distance (miles, float64), duration
    (minutes, float64) and expected (the duration without noise, for judging a model)."""
    rng = np.random.default_rng(seed)
    zones = np.arange(NUM_ZONES + 1)
    pu = rng.choice(zones, size=n, p=CITY.popularity)
    do = rng.choice(zones, size=n, p=CITY.popularity)
    same = rng.random(n) < SAME_BOROUGH_DROPOFF
    for b, (members, p) in enumerate(CITY.zones_of):
        rows = np.flatnonzero(same & (CITY.borough[pu] == b))
        do[rows] = rng.choice(members, size=len(rows), p=p)
    cross = CITY.borough[pu] != CITY.borough[do]
    median = np.where(cross, DISTANCE_MEDIAN_CROSS, DISTANCE_MEDIAN_SAME)
    distance = np.round(median * rng.lognormal(0.0, DISTANCE_SIGMA, n), 2)
    distance = np.clip(distance, *DISTANCE_RANGE)
    speed = (CITY.speed[pu] + CITY.speed[do]) / 2.0
    expected = PICKUP_MINUTES + distance / speed * 60.0 + np.where(cross, CROSSING_MINUTES, 0.0)
    duration = np.clip(expected * rng.lognormal(0.0, NOISE_SIGMA, n), *DURATION_RANGE)
    return {
        "pu": pu.astype(np.int64),
        "do": do.astype(np.int64),
        "distance": distance,
        "duration": duration,
        "expected": np.clip(expected, *DURATION_RANGE),
    }


def pu_do(pu, do):
    """The model's categorical feature, as the pipeline computes it: "<PU>_<DO>"."""
    return [f"{a}_{b}" for a, b in zip(pu.tolist(), do.tolist())]


def write_events(out, n, seed, start_id):
    # Each chunk is a different sub-seed so that a chunk size change would be the only thing
    # that changes the rows; ids keep counting across chunks.
    ride_id = start_id
    for i, begin in enumerate(range(0, n, CHUNK)):
        m = min(CHUNK, n - begin)
        r = generate(m, [seed, i])
        ids = range(ride_id, ride_id + m)
        # repr of a float rounded to 0.01 is its shortest form: 3.66, not 3.6600000000000001.
        out.write("".join(
            f'{{"ride": {{"PULocationID": {a}, "DOLocationID": {b}, "trip_distance": {d!r}}}, '
            f'"ride_id": {k}}}\n'
            for a, b, d, k in zip(r["pu"].tolist(), r["do"].tolist(), r["distance"].tolist(), ids)))
        ride_id += m


def write_features(out, n, seed):
    for i, begin in enumerate(range(0, n, CHUNK)):
        m = min(CHUNK, n - begin)
        r = generate(m, [seed, i])
        out.write("".join(
            f'{{"PU_DO": "{a}_{b}", "trip_distance": {d!r}}}\n'
            for a, b, d in zip(r["pu"].tolist(), r["do"].tolist(), r["distance"].tolist())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--events", type=int, metavar="N", help="write N ride events")
    mode.add_argument("--features", type=int, metavar="N", help="write N feature rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-id", type=int, default=1, help="first ride_id (--events)")
    ap.add_argument("-o", "--output", metavar="PATH", help="file to write (default: stdout)")
    args = ap.parse_args()
    n = args.events if args.events is not None else args.features
    if n < 0:
        ap.error("N must be at least 0")
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        if args.events is not None:
            write_events(out, n, args.seed, args.start_id)
        else:
            write_features(out, n, args.seed)
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
