"""The A/B demo's recipients: US area codes with their time offsets, first
names, where forwards are opened, and the CSV the demo imports."""
from __future__ import annotations

import csv
import io
import random

#: (area code, city, hours ahead of the sender's clock). Fixed differences,
#: like :mod:`.demo`'s, so a seed gives the same data in any week.
AREAS: tuple[tuple[str, str, int], ...] = (
    ("212", "New York", 0), ("718", "Brooklyn", 0), ("617", "Boston", 0), ("215", "Philadelphia", 0),
    ("202", "Washington", 0), ("404", "Atlanta", 0), ("305", "Miami", 0), ("704", "Charlotte", 0),
    ("313", "Detroit", 0),
    ("312", "Chicago", -1), ("214", "Dallas", -1), ("713", "Houston", -1), ("512", "Austin", -1),
    ("615", "Nashville", -1), ("612", "Minneapolis", -1),
    ("415", "San Francisco", -3), ("213", "Los Angeles", -3), ("206", "Seattle", -3), ("503", "Portland", -3),
    ("619", "San Diego", -3),
)


#: Numbers per area code: 555-0100 to 555-0199.
PER_AREA = 100


FIRST_NAMES = (
    "James", "Mary", "Michael", "Patricia", "Robert", "Jennifer", "John", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Karen", "Christopher", "Sarah",
    "Charles", "Lisa", "Daniel", "Nancy", "Matthew", "Sandra", "Anthony", "Ashley", "Mark", "Emily",
    "Steven", "Michelle", "Andrew", "Amanda", "Joshua", "Melissa", "Kevin", "Stephanie", "Brian", "Rebecca",
    "Jose", "Laura", "Ryan", "Maria", "Jacob", "Emma", "Nicholas", "Olivia", "Tyler", "Sophia",
    "Brandon", "Ava", "Luis", "Isabella", "Noah", "Mia", "Jordan", "Chloe", "Aaron", "Grace",
)


#: Where forwarded messages are opened: (country, share).
FORWARD_COUNTRIES = (("US", 0.86), ("CA", 0.06), ("MX", 0.04), ("GB", 0.04))


def recipients_csv(rng: random.Random, n: int) -> str:
    """``phone,first_name,city`` for ``n`` people, numbers written as people
    write them."""
    numbers = rng.sample(range(len(AREAS) * PER_AREA), n)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["phone", "first_name", "city"])
    for number in numbers:
        area, city, _ = AREAS[number // PER_AREA]
        line = f"{100 + number % PER_AREA:04d}"
        style = rng.random()
        if style < 0.4:
            phone = f"({area}) 555-{line}"
        elif style < 0.7:
            phone = f"+1{area}555{line}"
        elif style < 0.9:
            phone = f"{area}-555-{line}"
        else:
            phone = f"+1 {area} 555 {line}"
        writer.writerow([phone, FIRST_NAMES[rng.randrange(len(FIRST_NAMES))], city])
    return out.getvalue()
