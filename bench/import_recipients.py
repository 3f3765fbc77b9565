"""Benchmark: importing 100,000 recipients from CSV on SQLite, then
rendering their messages.

    python bench/import_recipients.py [--rows 100000]

Writes a CSV of distinct US mobile-format numbers with first names and
cities (plus 1% invalid rows and 1% duplicates), creates a campaign in a new
SQLite database with 2% of the numbers on the opt-out list and times
``flask smstrack import-recipients`` end to end, as a user runs it (each
number checked against the opt-out list). Then gives the campaign a link and two variants and times
``flask smstrack export-messages``: variant assignment, a short code per
recipient, rendering, segment counting and the CSV.
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


def write_csv(path: Path, rows: int, rng: random.Random) -> None:
    seen: set[str] = set()
    with open(path, "w", encoding="utf-8") as f:
        f.write("phone,first_name,city\n")
        written = 0
        while written < rows:
            if written % 100 == 0:
                number = "not-a-number"
            elif written % 100 == 1 and seen:
                number = next(iter(seen))
            else:
                number = f"({rng.choice(AREA_CODES)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
                if number in seen:
                    continue
                seen.add(number)
            f.write(f"{number},{rng.choice(NAMES)},{rng.choice(CITIES)}\n")
            written += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
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
        write_csv(path, args.rows, random.Random(7))
        stops = Path(tmp) / "opt-outs.csv"
        lines = path.read_text(encoding="utf-8").splitlines()
        stops.write_text("phone\n" + "".join(f"{line.split(',')[0]}\n" for line in lines[3::50]), encoding="utf-8")
        cli("import-opt-outs", str(stops))
        start = time.perf_counter()
        out = cli("import-recipients", campaign_id, str(path))
        elapsed = time.perf_counter() - start
        cli("create-link", campaign_id, "https://shop.example.com/spring")
        cli("add-variant", campaign_id, "A", "Hi {first_name}, spring sale in {city}: 20% off today {link}")
        cli("add-variant", campaign_id, "B", "{first_name}, 20% off everything until Sunday: {link}")
        env["SMSTRACK_BASE_URL"] = '"https://sms.example.com"'
        start = time.perf_counter()
        messages = cli("export-messages", campaign_id)
        rendered = time.perf_counter() - start
    print(" ".join(out.strip().splitlines()[-2:]))
    print(f"import of {args.rows} rows: {elapsed:.1f} s ({args.rows / elapsed:,.0f} rows/s), limit 60 s")
    count = messages.count("\n") - 1
    print(f"export-messages of {count} messages: {rendered:.1f} s ({count / rendered:,.0f} messages/s)")


if __name__ == "__main__":
    main()
