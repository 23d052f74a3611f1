#!/usr/bin/python3
"""Synthetic card transactions: the data the fraud model is trained and tested on.

Usage:
  fraud_data.py --rows N [--seed S] [--per-message K] [--start-index I] [-o PATH]
      N transactions as Kafka message values, one per line, K rows each (default 1), exactly as
      the seed's producer writes them with pandas' DataFrame.to_json(orient="split"), index
      included (the rows' positions, counting from I, default 0):
      {"columns":["trans_date_trans_time",...,"is_fraud"],"index":[0],"data":[["2024-...",...]]}
  fraud_data.py --rows N [--seed S] --csv [-o PATH]
      The same rows as plain CSV with a header line and no index.

Output goes to stdout unless -o is given. The same seed always gives the same rows; the message
size (--per-message) only groups them.

The 22 columns are those of the seed's transactions: trans_date_trans_time ("YYYY-MM-DD
HH:MM:SS", UTC), cc_num, merchant ("fraud_<Name>"), category, amt, first, last, gender, street,
city, state, zip, lat, long, city_pop, job, dob ("YYYY-MM-DD"), trans_num (32 hex digits),
unix_time (epoch milliseconds of trans_date_trans_time, plus 0-999 ms), merch_lat, merch_long,
is_fraud (0 or 1).

The world is fixed (it does not depend on the seed): 1,000 card holders, each living in one of
50 US places (a 0.03 degree jitter around the place's centre) with a name, gender (F with
probability 0.52), street, job, date of birth and a card number (Visa, Mastercard, Amex or
Discover, with a Luhn check digit), and 800 merchants with unique names, each of one of the 14
categories (drawn by their legitimate shares). A transaction:
  - is_fraud: 1 with probability 0.005;
  - card holder: by a per-holder activity weight (log-normal, sigma 0.5); for a fraud, the weight
    is tripled for holders under 25 or 65 and over on 2024-07-01;
  - time: a day of 2024 uniformly, an hour from HOUR_WEIGHTS (legitimate spending peaks from
    noon to 21:00; fraud mostly from 22:00 to 03:59), minute and second uniformly;
  - category: by CATEGORIES' legitimate or fraud share (fraud favours shopping_net,
    grocery_pos, misc_net and shopping_pos), and a merchant of that category uniformly;
  - amt: log-normal with the category's median and sigma, legitimate or fraud (most fraud
    amounts are high; on gas_transport, grocery_net and a few others they are small card
    tests); rounded to 0.01, clipped to [1, 30000];
  - merchant location: the holder's plus a normal offset of sigma 0.3 degrees (latitude; the
    longitude's is divided by cos(latitude), so both are ~33 km); for a fraud, with
    probability 0.6 the sigma is 2.5 degrees instead (far from home); rounded to 6 decimals.
So the signal is in the hour, the category and amount together, the distance between the holder
and the merchant and the holder's age; city_pop and gender carry none.
"""
import argparse
import json
import sys

import numpy as np

# The world's layout comes from its own generator, so every seed samples the same world.
WORLD_SEED = 20260404
NUM_HOLDERS = 1000
NUM_MERCHANTS = 800
FRAUD_RATE = 0.005
FEMALE_SHARE = 0.52
# Activity: how often a holder uses the card, relative to the others.
ACTIVITY_SIGMA = 0.5
# Ages on this day decide the fraud weight (and dates of birth are drawn back from it).
AGE_REFERENCE = "2024-07-01"
# Age bands on AGE_REFERENCE, with their share of holders.
AGE_BANDS = [(18, 25, 0.10), (25, 65, 0.68), (65, 95, 0.22)]
YOUNG, OLD = 25, 65
FRAUD_AGE_WEIGHT = 3.0
YEAR_START = "2024-01-01"
YEAR_DAYS = 366
HOME_JITTER = 0.03
MERCHANT_SIGMA = 0.3
FAR_SIGMA = 2.5
FRAUD_FAR_SHARE = 0.6
AMOUNT_RANGE = (1.0, 30000.0)
# Rows generated and formatted per chunk when writing: bounds memory for any N.
CHUNK = 200_000

# Relative weight of each hour 0-23: legitimate, fraud.
HOUR_WEIGHTS = (
    np.array([2, 1.5, 1, 1, 1, 1.5, 3, 4, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 5]),
    np.array([12, 12, 12, 12, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5,
              1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 14, 14]),
)

# Category: legitimate share, fraud share, legitimate amount median and sigma, fraud amount
# median and sigma. In the sorted order the model's category codes use.
CATEGORIES = [
    ("entertainment", 0.072, 0.04, 40.0, 0.9, 500.0, 0.3),
    ("food_dining", 0.070, 0.03, 35.0, 0.8, 120.0, 0.3),
    ("gas_transport", 0.102, 0.08, 60.0, 0.4, 12.0, 0.5),
    ("grocery_net", 0.035, 0.02, 45.0, 0.5, 12.0, 0.5),
    ("grocery_pos", 0.095, 0.25, 70.0, 0.6, 310.0, 0.15),
    ("health_fitness", 0.066, 0.02, 40.0, 0.8, 20.0, 0.5),
    ("home", 0.095, 0.03, 45.0, 0.9, 250.0, 0.3),
    ("kids_pets", 0.087, 0.03, 40.0, 0.9, 20.0, 0.5),
    ("misc_net", 0.048, 0.12, 30.0, 1.0, 800.0, 0.3),
    ("misc_pos", 0.062, 0.03, 25.0, 1.0, 200.0, 0.5),
    ("personal_care", 0.070, 0.03, 25.0, 0.9, 25.0, 0.4),
    ("shopping_net", 0.075, 0.23, 45.0, 1.0, 1000.0, 0.2),
    ("shopping_pos", 0.090, 0.10, 45.0, 1.0, 850.0, 0.25),
    ("travel", 0.031, 0.01, 8.0, 1.5, 10.0, 1.0),
]
CATEGORY_NAMES = [c[0] for c in CATEGORIES]

COLUMNS = [
    "trans_date_trans_time", "cc_num", "merchant", "category", "amt", "first", "last", "gender",
    "street", "city", "state", "zip", "lat", "long", "city_pop", "job", "dob", "trans_num",
    "unix_time", "merch_lat", "merch_long", "is_fraud",
]

# Place, state, zip, latitude, longitude, population: big cities and small towns.
PLACES = [
    ("New York City", "NY", 10001, 40.7128, -74.0060, 8336817),
    ("Los Angeles", "CA", 90012, 34.0522, -118.2437, 3898747),
    ("Chicago", "IL", 60601, 41.8781, -87.6298, 2746388),
    ("Houston", "TX", 77002, 29.7604, -95.3698, 2304580),
    ("Phoenix", "AZ", 85004, 33.4484, -112.0740, 1608139),
    ("Philadelphia", "PA", 19107, 39.9526, -75.1652, 1603797),
    ("San Antonio", "TX", 78205, 29.4241, -98.4936, 1434625),
    ("San Diego", "CA", 92101, 32.7157, -117.1611, 1386932),
    ("Dallas", "TX", 75201, 32.7767, -96.7970, 1304379),
    ("Jacksonville", "FL", 32202, 30.3322, -81.6557, 949611),
    ("Columbus", "OH", 43215, 39.9612, -82.9988, 905748),
    ("Charlotte", "NC", 28202, 35.2271, -80.8431, 874579),
    ("Indianapolis", "IN", 46204, 39.7684, -86.1581, 887642),
    ("Seattle", "WA", 98101, 47.6062, -122.3321, 737015),
    ("Denver", "CO", 80202, 39.7392, -104.9903, 715522),
    ("Boston", "MA", 2108, 42.3601, -71.0589, 675647),
    ("Nashville", "TN", 37203, 36.1627, -86.7816, 689447),
    ("Detroit", "MI", 48226, 42.3314, -83.0458, 639111),
    ("Portland", "OR", 97204, 45.5152, -122.6784, 652503),
    ("Las Vegas", "NV", 89101, 36.1699, -115.1398, 641903),
    ("Albuquerque", "NM", 87102, 35.0844, -106.6504, 564559),
    ("Omaha", "NE", 68102, 41.2565, -95.9345, 486051),
    ("Tulsa", "OK", 74103, 36.1540, -95.9928, 413066),
    ("Minneapolis", "MN", 55401, 44.9778, -93.2650, 429954),
    ("Birmingham", "AL", 35203, 33.5186, -86.8104, 200733),
    ("Des Moines", "IA", 50309, 41.5868, -93.6250, 214133),
    ("Boise", "ID", 83702, 43.6150, -116.2023, 235684),
    ("Burlington", "VT", 5401, 44.4759, -73.2121, 44743),
    ("Bangor", "ME", 4401, 44.8016, -68.7712, 31753),
    ("Higganum", "CT", 6441, 41.4682, -72.5751, 5438),
    ("Moab", "UT", 84532, 38.5733, -109.5498, 5366),
    ("Elk City", "OK", 73644, 35.4120, -99.4043, 11561),
    ("Fort Washakie", "WY", 82514, 43.0047, -108.8823, 1750),
    ("Kirksville", "MO", 63501, 40.1948, -92.5833, 17530),
    ("Hazard", "KY", 41701, 37.2498, -83.1932, 5263),
    ("Laramie", "WY", 82070, 41.3114, -105.5911, 31407),
    ("Marietta", "OH", 45750, 39.4154, -81.4548, 13385),
    ("Mount Vernon", "WA", 98273, 48.4201, -122.3375, 35219),
    ("Natchez", "MS", 39120, 31.5604, -91.4032, 14520),
    ("Ogden", "UT", 84401, 41.2230, -111.9738, 87321),
    ("Pierre", "SD", 57501, 44.3683, -100.3510, 14091),
    ("Red Cloud", "NE", 68970, 40.0889, -98.5195, 1020),
    ("Sitka", "AK", 99835, 57.0531, -135.3300, 8458),
    ("Taos", "NM", 87571, 36.4072, -105.5731, 6474),
    ("Tupelo", "MS", 38804, 34.2576, -88.7034, 37923),
    ("Vero Beach", "FL", 32960, 27.6386, -80.3973, 17892),
    ("Walla Walla", "WA", 99362, 46.0646, -118.3430, 34060),
    ("Winslow", "AZ", 86047, 35.0242, -110.6974, 9005),
    ("Hilo", "HI", 96720, 19.7241, -155.0868, 44186),
    ("Key West", "FL", 33040, 24.5551, -81.7800, 26444),
]

FEMALE_FIRST = [
    "Kimberly", "Mary", "Jennifer", "Linda", "Patricia", "Susan", "Jessica", "Sarah", "Karen",
    "Nancy", "Lisa", "Margaret", "Ashley", "Emily", "Donna", "Michelle", "Carol", "Amanda",
    "Melissa", "Deborah", "Stephanie", "Rebecca", "Laura", "Sharon", "Cynthia", "Kathleen",
]
MALE_FIRST = [
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
    "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul",
    "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Edward", "Ronald",
]
LAST = [
    "Myers", "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "O'Connor", "McDermott", "Osinski", "Morar",
    "Kuhn", "Heathcote", "Schmeler", "Bashirian", "Kozey", "Lind", "Wisoky", "Rippin",
]
STREET_NAMES = [
    "King", "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park",
    "Sunset", "Ridge", "River", "Meadow", "Forest", "Church", "Mill", "Spring", "Valley", "Bridge",
]
STREET_SUFFIXES = ["Isle", "Street", "Avenue", "Road", "Lane", "Drive", "Court", "Way", "Plaza"]
JOBS = [
    "Librarian, academic", "Teacher, primary school", "Engineer, civil (consulting)",
    "Nurse, adult", "Accountant, chartered", "Software engineer", "Pharmacist, community",
    "Administrator, charities/voluntary organisations", "Sales executive", "Designer, interior/spatial",
    "Psychologist, counselling", "Retail manager", "Surveyor, land/geomatics", "Police officer",
    "Chef", "Electrician", "Farmer", "Lawyer", "Doctor, general practice", "Architect",
    "Journalist, newspaper", "Economist", "Film/video editor", "Paramedic", "Pilot, airline",
    "Social worker", "Systems analyst", "Veterinary surgeon", "Web designer", "Careers adviser",
]
MERCHANT_FORMS = ["{a} LLC", "{a} Inc", "{a} Group", "{a} and Sons", "{a}-{b}", "{a}, {b} and {c}",
                  "{a} Ltd", "{a} PLC", "{a}-{b}"]


def luhn_complete(digits):
    """digits (a string without its check digit) followed by its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the check digit will be position 0
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


class World:
    """The fixed card holders and merchants."""

    def __init__(self):
        rng = np.random.default_rng(WORLD_SEED)
        n = NUM_HOLDERS
        place = rng.integers(0, len(PLACES), n)
        self.female = rng.random(n) < FEMALE_SHARE
        firsts = [FEMALE_FIRST[rng.integers(len(FEMALE_FIRST))] if f else
                  MALE_FIRST[rng.integers(len(MALE_FIRST))] for f in self.female]
        lasts = [LAST[i] for i in rng.integers(0, len(LAST), n)]
        self.lat = np.round(np.array([PLACES[p][3] for p in place]) +
                            rng.normal(0.0, HOME_JITTER, n), 4)
        self.long = np.round(np.array([PLACES[p][4] for p in place]) +
                             rng.normal(0.0, HOME_JITTER, n), 4)
        band = rng.choice(len(AGE_BANDS), size=n, p=[b[2] for b in AGE_BANDS])
        lo = np.array([AGE_BANDS[b][0] for b in band])
        hi = np.array([AGE_BANDS[b][1] for b in band])
        age_days = ((lo + (hi - lo) * rng.random(n)) * 365.25).astype(np.int64)
        self.dob = np.datetime64(AGE_REFERENCE, "D") - age_days
        age = age_days / 365.25
        self.fraud_weight = np.where((age < YOUNG) | (age >= OLD), FRAUD_AGE_WEIGHT, 1.0)
        self.activity = rng.lognormal(0.0, ACTIVITY_SIGMA, n)
        schemes = [("4", 16), ("5", 16), ("34", 15), ("37", 15), ("6011", 16), ("4", 13)]
        scheme = rng.choice(len(schemes), size=n, p=[0.35, 0.25, 0.1, 0.1, 0.1, 0.1])
        self.cc_num = []
        for s in scheme:
            prefix, length = schemes[s]
            body = prefix + "".join(str(d) for d in rng.integers(0, 10, length - len(prefix) - 1))
            self.cc_num.append(int(luhn_complete(body)))
        streets = []
        for _ in range(n):
            s = (f"{rng.integers(1, 99999)} {STREET_NAMES[rng.integers(len(STREET_NAMES))]} "
                 f"{STREET_SUFFIXES[rng.integers(len(STREET_SUFFIXES))]}")
            if rng.random() < 0.3:
                s += f" {'Suite' if rng.random() < 0.5 else 'Apt.'} {rng.integers(100, 999)}"
            streets.append(s)
        jobs = [JOBS[i] for i in rng.integers(0, len(JOBS), n)]
        dob = np.datetime_as_string(self.dob, unit="D")
        # The holder's columns first .. dob, in order.
        self.holder_values = [
            [firsts[i], lasts[i], "F" if self.female[i] else "M", streets[i], PLACES[place[i]][0],
             PLACES[place[i]][1], PLACES[place[i]][2], float(self.lat[i]), float(self.long[i]),
             PLACES[place[i]][5], jobs[i], str(dob[i])]
            for i in range(n)]

        weights = np.array([c[1] for c in CATEGORIES])
        self.merchant_category = rng.choice(len(CATEGORIES), size=NUM_MERCHANTS,
                                            p=weights / weights.sum())
        # Names are unique: a name is drawn again until it is new.
        self.merchant = []
        taken = set()
        while len(self.merchant) < NUM_MERCHANTS:
            form = MERCHANT_FORMS[rng.integers(len(MERCHANT_FORMS))]
            a, b, c = (LAST[i] for i in rng.integers(0, len(LAST), 3))
            name = "fraud_" + form.format(a=a, b=b, c=c)
            if name not in taken:
                taken.add(name)
                self.merchant.append(name)
        self.merchants_of = [np.flatnonzero(self.merchant_category == k)
                             for k in range(len(CATEGORIES))]


WORLD = World()


def generate(n, seed=0):
    """n transactions as numpy arrays: holder (index into WORLD), merchant (index), category
    (index into CATEGORY_NAMES), amt, time (datetime64[s]), unix_time (ms), trans_hi and trans_lo
    (the two 64-bit halves of trans_num), merch_lat, merch_long, is_fraud (int64 0/1)."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(n) < FRAUD_RATE
    nf = int(fraud.sum())
    holder = np.empty(n, dtype=np.int64)
    legit_p = WORLD.activity / WORLD.activity.sum()
    fraud_p = WORLD.activity * WORLD.fraud_weight
    fraud_p /= fraud_p.sum()
    holder[~fraud] = rng.choice(NUM_HOLDERS, size=n - nf, p=legit_p)
    holder[fraud] = rng.choice(NUM_HOLDERS, size=nf, p=fraud_p)

    hour = np.empty(n, dtype=np.int64)
    for cls, rows in ((0, ~fraud), (1, fraud)):
        w = HOUR_WEIGHTS[cls]
        hour[rows] = rng.choice(24, size=int(rows.sum()), p=w / w.sum())
    seconds = (rng.integers(0, YEAR_DAYS, n) * 86400 + hour * 3600 +
               rng.integers(0, 3600, n))
    time = np.datetime64(YEAR_START, "s") + seconds
    unix_time = time.astype(np.int64) * 1000 + rng.integers(0, 1000, n)

    cat = np.empty(n, dtype=np.int64)
    median = np.empty(n)
    sigma = np.empty(n)
    for cls, rows in ((0, ~fraud), (1, fraud)):
        share = np.array([c[1 + cls] for c in CATEGORIES])
        cat[rows] = rng.choice(len(CATEGORIES), size=int(rows.sum()), p=share / share.sum())
        median[rows] = np.array([c[3 + 2 * cls] for c in CATEGORIES])[cat[rows]]
        sigma[rows] = np.array([c[4 + 2 * cls] for c in CATEGORIES])[cat[rows]]
    amt = np.clip(np.round(median * rng.lognormal(0.0, sigma), 2), *AMOUNT_RANGE)
    pick = rng.random(n)
    merchant = np.empty(n, dtype=np.int64)
    for k, members in enumerate(WORLD.merchants_of):
        rows = np.flatnonzero(cat == k)
        merchant[rows] = members[(pick[rows] * len(members)).astype(np.int64)]

    far = fraud & (rng.random(n) < FRAUD_FAR_SHARE)
    spread = np.where(far, FAR_SIGMA, MERCHANT_SIGMA)
    lat = WORLD.lat[holder]
    merch_lat = np.round(np.clip(lat + rng.normal(0.0, 1.0, n) * spread, -89.9, 89.9), 6)
    merch_long = np.round(WORLD.long[holder] + rng.normal(0.0, 1.0, n) * spread /
                          np.cos(np.radians(lat)), 6)
    trans = rng.integers(0, 2**64, size=(2, n), dtype=np.uint64)
    return {
        "holder": holder, "merchant": merchant, "category": cat, "amt": amt, "time": time,
        "unix_time": unix_time, "trans_hi": trans[0], "trans_lo": trans[1],
        "merch_lat": merch_lat, "merch_long": merch_long, "is_fraud": fraud.astype(np.int64),
    }


def rows(t):
    """The generated transactions as lists of the 22 column values, in COLUMNS order."""
    times = np.char.replace(np.datetime_as_string(t["time"], unit="s"), "T", " ").tolist()
    out = []
    for i, (h, m, c, a, u, hi, lo, mlat, mlong, f) in enumerate(zip(
            t["holder"].tolist(), t["merchant"].tolist(), t["category"].tolist(),
            t["amt"].tolist(), t["unix_time"].tolist(), t["trans_hi"].tolist(),
            t["trans_lo"].tolist(), t["merch_lat"].tolist(), t["merch_long"].tolist(),
            t["is_fraud"].tolist())):
        out.append([times[i], WORLD.cc_num[h], WORLD.merchant[m], CATEGORY_NAMES[c], a,
                    *WORLD.holder_values[h], f"{hi:016x}{lo:016x}", u, mlat, mlong, f])
    return out


def columns(t):
    """The generated transactions as a dict of the 22 columns (lists), as a consumer sees them."""
    return dict(zip(COLUMNS, map(list, zip(*rows(t))))) if len(t["amt"]) else \
        {c: [] for c in COLUMNS}


def _json_value(v):
    # What pandas' to_json writes: ints and shortest-form floats as Python writes them (every
    # float here has at most 10 significant digits, pandas' default double_precision), strings
    # ASCII-escaped with '/' escaped as '\/'.
    if isinstance(v, str):
        return json.dumps(v).replace("/", "\\/")
    return repr(v)


def _csv_value(v):
    # As pandas' to_csv (the csv module's minimal quoting) writes it.
    if isinstance(v, str):
        if any(ch in v for ch in ',"\r\n'):
            return '"' + v.replace('"', '""') + '"'
        return v
    return repr(v)


def _formatted(t, value, sep):
    """Each transaction as its 22 values formatted by `value` and joined by `sep`. The holders'
    and merchants' values repeat from row to row, so they are formatted once per call."""
    holder_text = {h: sep.join(value(v) for v in WORLD.holder_values[h])
                   for h in np.unique(t["holder"]).tolist()}
    merchant_text = {m: value(WORLD.merchant[m]) for m in np.unique(t["merchant"]).tolist()}
    category_text = [value(c) for c in CATEGORY_NAMES]
    times = np.char.replace(np.datetime_as_string(t["time"], unit="s"), "T", " ").tolist()
    q = '"' if value is _json_value else ""
    return [
        f"{q}{tm}{q}{sep}{WORLD.cc_num[h]}{sep}{merchant_text[m]}{sep}{category_text[c]}{sep}"
        f"{a!r}{sep}{holder_text[h]}{sep}{q}{hi:016x}{lo:016x}{q}{sep}{u}{sep}{mlat!r}{sep}"
        f"{mlong!r}{sep}{f}"
        for tm, h, m, c, a, u, hi, lo, mlat, mlong, f in zip(
            times, t["holder"].tolist(), t["merchant"].tolist(), t["category"].tolist(),
            t["amt"].tolist(), t["unix_time"].tolist(), t["trans_hi"].tolist(),
            t["trans_lo"].tolist(), t["merch_lat"].tolist(), t["merch_long"].tolist(),
            t["is_fraud"].tolist())]


_HEADER = '{"columns":[' + ",".join(f'"{c}"' for c in COLUMNS) + '],"index":['


def write_messages(out, n, seed, per_message, start_index):
    # Each chunk is a different sub-seed, as in ride_data.py; a chunk holds whole messages.
    chunk = max(1, CHUNK // per_message) * per_message
    index = start_index
    for i, begin in enumerate(range(0, n, chunk)):
        m = min(chunk, n - begin)
        body = _formatted(generate(m, [seed, i]), _json_value, ",")
        if per_message == 1:
            lines = [f'{_HEADER}{index + j}],"data":[[{b}]]}}\n' for j, b in enumerate(body)]
        else:
            lines = []
            for j in range(0, m, per_message):
                k = min(per_message, m - j)
                lines.append(_HEADER + ",".join(str(index + j + x) for x in range(k)) +
                             '],"data":[' + ",".join(f"[{b}]" for b in body[j:j + k]) + "]}\n")
        out.write("".join(lines))
        index += m


def write_csv(out, n, seed):
    out.write(",".join(COLUMNS) + "\n")
    for i, begin in enumerate(range(0, n, CHUNK)):
        m = min(CHUNK, n - begin)
        out.write("".join(r + "\n" for r in _formatted(generate(m, [seed, i]), _csv_value, ",")))


# ---------------------------------------------------------------------------------------------
# The model's features, computed from one transaction's raw columns exactly as the pipeline's
# map expressions define them (docs/models.md). Shared by the trainer and the reference scorer.

FEATURES = ["amt", "category", "hour", "age", "distance_km", "city_pop", "gender_f"]
EARTH_RADIUS_KM = 6371.0
MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 86_400_000_000


def epoch_micros(texts):
    """"YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD" (UTC) as int64 microseconds since the epoch."""
    return np.array(texts, dtype="datetime64[us]").astype(np.int64)


def features(cols):
    """The 7 model inputs from a dict of raw columns (lists or arrays), as numpy arrays:
      amt          amt
      category     category (a string; the model encodes it with categories.json)
      hour         floor(t / 3,600,000,000) % 24, t = trans_date_trans_time in epoch microseconds
      age          (t - dob in epoch microseconds) / 86,400,000,000 / 365.25, in float64
      distance_km  haversine from (lat, long) to (merch_lat, merch_long), radius 6371.0 km
      city_pop     city_pop
      gender_f     1 if gender == "F" else 0
    """
    t = epoch_micros(cols["trans_date_trans_time"])
    dob = epoch_micros(cols["dob"])
    lat = np.asarray(cols["lat"], dtype=np.float64)
    lon = np.asarray(cols["long"], dtype=np.float64)
    mlat = np.asarray(cols["merch_lat"], dtype=np.float64)
    mlon = np.asarray(cols["merch_long"], dtype=np.float64)
    return {
        "amt": np.asarray(cols["amt"], dtype=np.float64),
        "category": np.asarray(cols["category"], dtype=object),
        "hour": (t // MICROS_PER_HOUR) % 24,
        "age": (t - dob).astype(np.float64) / MICROS_PER_DAY / 365.25,
        "distance_km": haversine_km(lat, lon, mlat, mlon),
        "city_pop": np.asarray(cols["city_pop"], dtype=np.int64),
        "gender_f": (np.asarray(cols["gender"], dtype=object) == "F").astype(np.int64),
    }


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance, in the operation order docs/models.md gives the pipeline:
    a = sin(dlat / 2)^2 + cos(lat1) * cos(lat2) * sin(dlon / 2)^2, d = 2 * R * asin(sqrt(a)),
    with every angle in radians (degrees * pi / 180)."""
    rad = np.pi / 180.0
    s_lat = np.sin((lat2 - lat1) * rad / 2.0)
    s_lon = np.sin((lon2 - lon1) * rad / 2.0)
    a = s_lat * s_lat + np.cos(lat1 * rad) * np.cos(lat2 * rad) * (s_lon * s_lon)
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, metavar="N", required=True, help="transactions to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-message", type=int, default=1, metavar="K",
                    help="rows per message (default 1)")
    ap.add_argument("--start-index", type=int, default=0, metavar="I",
                    help="the first row's index in the messages (default 0)")
    ap.add_argument("--csv", action="store_true", help="write CSV instead of messages")
    ap.add_argument("-o", "--output", metavar="PATH", help="file to write (default: stdout)")
    args = ap.parse_args()
    if args.rows < 0:
        ap.error("N must be at least 0")
    if args.per_message < 1:
        ap.error("--per-message must be at least 1")
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        if args.csv:
            write_csv(out, args.rows, args.seed)
        else:
            write_messages(out, args.rows, args.seed, args.per_message, args.start_index)
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
