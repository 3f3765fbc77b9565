"""Benchmark: importing 100,000 recipients from CSV on SQLite, then
rendering their messages, with opt-out and consent checks on.

    python bench/import_recipients.py [--rows 100000] [--suppressed 10000]

Writes a CSV of distinct US mobile-format numbers with first names, cities
and consent records (``consent_source``, ``consent_at``; one row in ten also
an explicit ``timezone``, one in fifty without a consent record), plus 1%
invalid rows and 1% duplicates. Creates a campaign in a new SQLite database
with a suppression list of ``--suppressed`` numbers (half of them in the
file) and times ``flask smstrack import-recipients`` end to end, as a user
runs it. Then gives the campaign a link and two variants and times
``flask smstrack export-messages`` with ``SMSTRACK_REQUIRE_CONSENT`` on:
variant assignment, a short code per recipient, rendering, segment counting
and the CSV.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AREA_CODES = (212, 213, 305, 310, 312, 415, 503, 617, 646, 702, 718, 773, 818, 917)
NAMES = ("Ana", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hiro", "Inès", "Jon")
CITIES = ("New York", "Los Angeles", "Chicago", "Miami", "Seattle", "Boston")
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
SOURCES = ("checkout form", "in-store sign-up", "keyword SPRING to 12345")


def write_csv(path: Path, rows: int, rng: random.Random) -> list[str]:
    """Write the file; returns its valid numbers in E.164."""
    seen: dict[str, str] = {}
    with open(path, "w", encoding="utf-8") as f:
        f.write("phone,first_name,city,timezone,consent_source,consent_at\n")
        written = 0
        while written < rows:
            if written % 100 == 0:
                number = "not-a-number"
            elif written % 100 == 1 and seen:
                number = next(iter(seen))
            else:
                area, exchange, line = rng.choice(AREA_CODES), rng.randint(200, 999), rng.randint(0, 9999)
                number = f"({area}) {exchange}-{line:04d}"
                if number in seen:
                    continue
                seen[number] = f"+1{area}{exchange}{line:04d}"
            zone = rng.choice(ZONES) if written % 10 == 3 else ""
            if written % 50 == 7:
                consent = ","
            elif written % 2:
                day = f"2026-0{rng.randint(1, 9)}-{rng.randint(10, 28)}"
                consent = f"{rng.choice(SOURCES)},{day}T{rng.randint(10, 23)}:05:00Z"
            else:
                consent = f"{rng.choice(SOURCES)},2026-0{rng.randint(1, 9)}-{rng.randint(10, 28)}"
            f.write(f"{number},{rng.choice(NAMES)},{rng.choice(CITIES)},{zone},{consent}\n")
            written += 1
    return list(seen.values())


#: Run by the app's own Python: the suppression list, as opt-outs fill it.
SUPPRESS = """
import sys
from sqlalchemy import insert
from wsgi import app, db
from flask_smstrack.models import EVERY_OWNER, Suppression
from flask_smstrack.sms.suppression import phone_hasher, phone_tail
phones = sys.stdin.read().split()
with app.app_context():
    digest = phone_hasher()
    db.session.execute(insert(Suppression.__table__), [
        {"owner_id": EVERY_OWNER, "phone_hash": digest(p), "phone_tail": phone_tail(p), "source": "import"}
        for p in phones
    ])
    db.session.commit()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--suppressed", type=int, default=10_000, help="Numbers on the suppression list.")
    args = parser.parse_args()
    flask = str(Path(sys.executable).parent / "flask")
    with tempfile.TemporaryDirectory(prefix="smstrack-bench-") as tmp:
        env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp}/bench.db", SMSTRACK_INSTANCE_PATH=tmp, SECRET_KEY="bench")
        def cli(*a: str) -> str:
            return subprocess.run([flask, "--app", "wsgi", "smstrack", *a], cwd=ROOT, env=env, check=True,
                                  capture_output=True, text=True).stdout
        cli("init-db")
        campaign_id = cli("create-campaign", "--name", "Import", "--currency", "USD").split()[1]
        path = Path(tmp) / "recipients.csv"
        rng = random.Random(7)
        phones = write_csv(path, args.rows, rng)
        listed = rng.sample(phones, min(args.suppressed // 2, len(phones)))
        listed += [f"+1415{rng.randint(200, 999)}{n:04d}" for n in range(args.suppressed - len(listed))]
        subprocess.run([sys.executable, "-c", SUPPRESS], cwd=ROOT, env=env, check=True, input="\n".join(listed),
                       text=True)
        start = time.perf_counter()
        out = cli("import-recipients", campaign_id, str(path))
        elapsed = time.perf_counter() - start
        cli("create-link", campaign_id, "https://shop.example.com/spring")
        cli("add-variant", campaign_id, "A", "Hi {first_name}, spring sale in {city}: 20% off today {link}")
        cli("add-variant", campaign_id, "B", "{first_name}, 20% off everything until Sunday: {link}")
        env["SMSTRACK_BASE_URL"] = '"https://sms.example.com"'
        env["SMSTRACK_REQUIRE_CONSENT"] = "true"
        start = time.perf_counter()
        messages = cli("export-messages", campaign_id)
        rendered = time.perf_counter() - start
    print(out.strip().splitlines()[-1])
    print(f"import of {args.rows} rows with consent columns, {args.suppressed} numbers suppressed:"
          f" {elapsed:.1f} s ({args.rows / elapsed:,.0f} rows/s), limit 60 s")
    count = messages.count("\n") - 1
    print(f"export-messages of {count} messages (consent required): {rendered:.1f} s"
          f" ({count / rendered:,.0f} messages/s)")


if __name__ == "__main__":
    main()
