"""Benchmark: the report API and the campaign page of one campaign at
10,000 clicks, then at 10,000,000, on PostgreSQL with the clicks partitioned
by month (revision 0010). Target: the large figures within 2x of the small.

    python bench/scale.py [--small 10000] [--large 10000000] [--months 4]
                          [--runs 7] [--pg-url URL] [--time-migration]

For a quick look, at a smaller scale: ``--large 200000``.

It builds the standalone app on its own database (``test_partitions_scale``
by default: created if missing, its smstrack tables emptied first), creates
the tables with the migrations, then:

1. fills ``--small`` clicks of one campaign, spread over the last
   ``--months`` months with set-based ``INSERT ... SELECT generate_series``
   (devices, OS, browsers, countries, referrers, hours of the day with an
   evening peak, previews and bots, returning visitors), 2% of the human
   clicks converting (revenue in USD), and makes the partitions of those
   months (``ensure_partitions``: the clicks first land in DEFAULT and move);
2. builds the rollups (the clicks were filled into the past, behind the
   rollups' cut: a reset, then the refresh a worker runs), adds a hundred
   clicks in the last minute (live rows: reports read rollups plus what
   came after their cut), and times, as a logged-in user and with an API
   key, the median of ``--runs`` GETs of ``/smstrack/api/v1/campaigns/<id>/report``
   and of the campaign page ``/smstrack/campaigns/<id>``;
3. grows the campaign to ``--large`` clicks the same way (same months,
   same mix), rebuilds the rollups, and times the same GETs;
4. prints both, and the ratios (large / small).

With ``--time-migration`` it then takes the table back to revision 0009
(a plain table) and upgrades it again, timing both: what revision 0010
costs on a table of ``--large`` clicks.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test_partitions_scale"

#: Clicks numbered ``i`` from ``:first`` to ``:last``, spread over
#: ``:days`` days from ``:start``; the hour of the day (UTC) follows a curve
#: with an evening peak, the rest is a fixed mix.
FILL = """
INSERT INTO smstrack_clicks (click_id, created_at, link_id, campaign_id, kind, bot_reason, is_first,
    human_confirmed, visitor_id, device_type, os, browser, country, ip, referrer_host)
SELECT 'k' || lpad(i::text, 11, '0'),
    CAST(:start AS timestamptz) + make_interval(
        days => CAST((i * 7919) % :days AS int),
        hours => (ARRAY[8,9,10,11,12,12,13,14,15,16,17,18,18,19,19,19,20,20,20,21,21,22,22,23])[1 + (i * 37) % 24],
        secs => (i * 104729) % 3600),
    :link_a + (i % 3), :campaign,
    CASE WHEN i % 17 = 0 THEN 'preview' WHEN i % 29 = 0 THEN 'bot' ELSE 'human' END,
    CASE WHEN i % 29 = 0 AND i % 17 <> 0 THEN 'flood' END,
    i % 4 <> 0, i % 3 = 0,
    CASE WHEN i % 4 = 0 THEN 'k' || lpad((i - 1)::text, 11, '0') END,
    CASE WHEN i % 100 < 70 THEN 'mobile' WHEN i % 100 < 92 THEN 'desktop' ELSE 'tablet' END,
    CASE WHEN i % 100 < 40 THEN 'iOS' WHEN i % 100 < 70 THEN 'Android' WHEN i % 100 < 85 THEN 'Windows'
         WHEN i % 100 < 92 THEN 'Mac OS X' ELSE 'iPadOS' END,
    CASE i % 5 WHEN 0 THEN 'Chrome' WHEN 1 THEN 'Mobile Safari' WHEN 2 THEN 'Chrome Mobile'
         WHEN 3 THEN 'Samsung Internet' ELSE 'Firefox' END,
    CASE WHEN i % 97 < 45 THEN 'US' WHEN i % 97 < 60 THEN 'GB' WHEN i % 97 < 70 THEN 'DE' WHEN i % 97 < 78 THEN 'CA'
         WHEN i % 97 < 84 THEN 'FR' WHEN i % 97 < 89 THEN 'AU' WHEN i % 97 < 93 THEN 'IN' ELSE 'BR' END,
    '81.2.' || (i % 250) || '.0',
    CASE WHEN i % 11 = 0 THEN 'l.instagram.com' WHEN i % 13 = 0 THEN 'lm.facebook.com' END
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) i
"""
#: 2% of the new human clicks convert, an hour or so later.
CONVERT = """
INSERT INTO smstrack_conversions (created_at, owner_id, click_pk, reported_click_id, campaign_id, link_id, event,
    revenue, currency, order_id, source, trust, refunded)
SELECT c.created_at + make_interval(secs => 600 + c.id % 7200), :owner, c.id, c.click_id, c.campaign_id, c.link_id,
    'purchase', 19.99 + (c.id % 50), 'USD', 'scale-' || c.id, 'server', 'verified', 0
FROM smstrack_clicks c
WHERE c.campaign_id = :campaign AND c.kind = 'human' AND c.id > :after AND c.id % 50 = 7
"""
#: A hundred clicks in the last minute: rows the rollups do not hold yet.
LIVE = """
INSERT INTO smstrack_clicks (click_id, created_at, link_id, campaign_id, kind, is_first, human_confirmed,
    device_type, os, browser, country)
SELECT 'live' || :tag || lpad(i::text, 6, '0'), now() - make_interval(secs => i % 60), :link_a, :campaign, 'human',
    true, false, 'mobile', 'iOS', 'Mobile Safari', 'US'
FROM generate_series(1, 100) i
"""


def _database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first():
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = create_engine(target)
    with engine.begin() as conn:
        for (name,) in conn.execute(text(
            "SELECT relname FROM pg_class WHERE relname LIKE 'smstrack_%' AND relkind IN ('r', 'p')"
            " AND NOT relispartition"
        )).all():
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def _median_ms(client, url: str, runs: int, **kw) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        response = client.get(url, **kw)
        times.append(time.perf_counter() - t)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return statistics.median(times) * 1000


class Bench:
    def __init__(self, url: str, months: int, runs: int) -> None:
        from wsgi import create_app, db

        from flask_smstrack.auth import create_api_key, create_user
        from flask_smstrack.db.migrate import upgrade
        from flask_smstrack.manage import create_campaign, create_link
        from flask_smstrack.schemas import CampaignSchema, LinkSchema

        os.environ["SMSTRACK_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="smstrack-scale-")
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
        self.db, self.runs, self.filled, self.rounds = db, runs, 0, 0
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.start = (now - dt.timedelta(days=30 * months)).replace(hour=0, minute=0, second=0)
        self.days = max(1, (now - self.start).days - 1)  # whole days before today
        with self.app.app_context():
            upgrade()
            user = create_user("scale@example.com", "bench-password", is_admin=True)
            self.owner = str(user.id)
            self.key, _ = create_api_key(self.owner, is_admin=True)
            campaign = create_campaign(CampaignSchema().load({
                "name": "Scale", "currency": "USD", "cost_per_message": "0.0079", "sent": 20_000_000,
                "sent_at": self.start.isoformat()}), self.owner)
            self.campaign = campaign.id
            self.link_a = create_link(campaign, LinkSchema().load({"destination_url": "https://example.com/a"})).id
            for path in ("b", "c"):
                create_link(campaign, LinkSchema().load({"destination_url": f"https://example.com/{path}"}))
        self.client = self.app.test_client()
        response = self.client.post("/smstrack/login", data={"email": "scale@example.com", "password": "bench-password"})
        if response.status_code != 302:
            raise SystemExit(f"could not log in: {response.status_code}")

    def grow(self, total: int, chunk: int = 1_000_000) -> float:
        """Clicks (and their conversions) up to ``total``; returns seconds."""
        from sqlalchemy import text

        from flask_smstrack.db.partitions import ensure_partitions

        t = time.perf_counter()
        with self.app.app_context():
            after = self.db.session.execute(text("SELECT coalesce(max(id), 0) FROM smstrack_clicks")).scalar()
            self.db.session.rollback()
            first = self.filled + 1
            while first <= total:
                last = min(total, first + chunk - 1)
                with self.db.engine.begin() as conn:
                    conn.execute(text(FILL), {"first": first, "last": last, "start": self.start, "days": self.days,
                                              "link_a": self.link_a, "campaign": self.campaign})
                print(f"  {last:,} clicks ({time.perf_counter() - t:.0f} s)", flush=True)
                first = last + 1
            with self.db.engine.begin() as conn:
                conn.execute(text(CONVERT), {"owner": self.owner, "campaign": self.campaign, "after": after})
            made = ensure_partitions()  # moves what landed in DEFAULT
            if made:
                print(f"  partitions made: {', '.join(made)}")
            with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE smstrack_clicks"))
                conn.execute(text("VACUUM ANALYZE smstrack_conversions"))
        self.filled = total
        return time.perf_counter() - t

    def catch_up(self) -> float:
        from flask_smstrack.models import Campaign
        from flask_smstrack.reports import rollups

        t = time.perf_counter()
        with self.app.app_context():
            # The clicks were filled into the past, behind the rollups' cut:
            # rebuild them (a refresh after live traffic adds only the
            # minutes since the cut).
            rollups.reset(self.campaign)
            rollups.refresh(self.db.session.get(Campaign, self.campaign))
            self.db.session.commit()
        return time.perf_counter() - t

    def live(self) -> None:
        from sqlalchemy import text

        self.rounds += 1
        with self.app.app_context(), self.db.engine.begin() as conn:
            conn.execute(text(LIVE), {"tag": self.rounds, "link_a": self.link_a, "campaign": self.campaign})

    def time_gets(self) -> dict:
        api = f"/smstrack/api/v1/campaigns/{self.campaign}/report"
        headers = {"Authorization": f"Bearer {self.key}"}
        page = f"/smstrack/campaigns/{self.campaign}"
        _median_ms(self.client, api, 1, headers=headers)  # warm: templates, caches
        _median_ms(self.client, page, 1)
        report = self.client.get(api, headers=headers).json
        return {
            "report_ms": _median_ms(self.client, api, self.runs, headers=headers),
            "page_ms": _median_ms(self.client, page, self.runs),
            "clicks_in_report": report.get("clicks"),
        }

    def partitions(self) -> list:
        from flask_smstrack.db.partitions import list_partitions

        with self.app.app_context(), self.db.engine.connect() as conn:
            return list_partitions(conn, exact=True)


def _phase(bench: Bench, total: int) -> dict:
    print(f"Filling {total:,} clicks ...", flush=True)
    fill = bench.grow(total)
    rollup = bench.catch_up()
    bench.live()
    result = {"clicks": total, "fill_s": fill, "rollup_rebuild_s": rollup, **bench.time_gets()}
    print(f"  fill {fill:.1f} s, rollups rebuilt {rollup:.1f} s, report {result['report_ms']:.1f} ms,"
          f" page {result['page_ms']:.1f} ms (median of {bench.runs}); the report counts"
          f" {result['clicks_in_report']:,} clicks", flush=True)
    return result


def _time_migration(bench: Bench) -> dict:
    from flask_smstrack.db.migrate import downgrade, upgrade

    out = {}
    with bench.app.app_context():
        t = time.perf_counter()
        downgrade("0009")
        out["downgrade_s"] = time.perf_counter() - t
        t = time.perf_counter()
        upgrade()
        out["upgrade_s"] = time.perf_counter() - t
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=4, help="months the clicks are spread over")
    parser.add_argument("--runs", type=int, default=7, help="GETs timed per figure (median)")
    parser.add_argument("--pg-url", default=os.environ.get("SMSTRACK_BENCH_PG_URL", DEFAULT_URL))
    parser.add_argument("--time-migration", action="store_true",
                        help="then time revision 0010's downgrade and upgrade on the large table")
    args = parser.parse_args()
    if args.large < args.small:
        parser.error("--large must be at least --small")
    started = time.perf_counter()
    _database(args.pg_url)
    bench = Bench(args.pg_url, args.months, args.runs)
    small = _phase(bench, args.small)
    large = _phase(bench, args.large)
    print("\nPartitions:")
    for p in bench.partitions():
        print(f"  {p.name:<28} {p.rows:>12,} rows {p.bytes / 2**20:>10.1f} MB")
    print(f"\n{'clicks':>12} {'report ms':>10} {'page ms':>10}")
    for r in (small, large):
        print(f"{r['clicks']:>12,} {r['report_ms']:>10.1f} {r['page_ms']:>10.1f}")
    report_ratio, page_ratio = large["report_ms"] / small["report_ms"], large["page_ms"] / small["page_ms"]
    print(f"{'ratio':>12} {report_ratio:>10.2f} {page_ratio:>10.2f}   (target: within 2x)")
    if args.time_migration:
        times = _time_migration(bench)
        print(f"Revision 0010 on {args.large:,} clicks: downgrade {times['downgrade_s']:.0f} s,"
              f" upgrade {times['upgrade_s']:.0f} s")
    print(f"Total time: {time.perf_counter() - started:.0f} s")
    with bench.app.app_context():
        bench.db.engine.dispose()


if __name__ == "__main__":
    main()
