"""Benchmark: the campaign page for a campaign with 1,000,000 clicks and
30,000 conversions, and the campaign list of 1,000 campaigns with 5,000
clicks each, on SQLite and on PostgreSQL.

    python bench/report_page.py [--clicks 1000000] [--conversions 30000]
                                [--campaigns 1000] [--campaign-clicks 5000]
                                [--only page|list] [--runs 10]
                                [--pg-url URL | --no-pg]

For each database it builds the standalone app, creates the tables with the
migrations, fills them with synthetic clicks (spread over a week, several
devices, countries, links, previews and bots) and conversions with
set-based INSERTs, then times, as a logged-in user (median and worst of
``--runs``):

- page: one campaign; the first rollup of the campaign (once per campaign;
  later refreshes only add the last minutes), the campaign page
  ``GET /smstrack/campaigns/<id>`` and the same numbers' JSON tables;
- list: ``--campaigns`` campaigns of one user with ``--campaign-clicks``
  clicks and 1% conversions each; the catch-up of every campaign's rollups
  (the job an import starts; rollup_catchup.py times the list before it),
  then the dashboard's list ``GET /smstrack/`` (newest first, and sorted
  by ROI, which needs every campaign's numbers), and the API table ``GET /smstrack/api/v1/campaigns/table``, with the SQL
  statements each runs.

SQLite runs in a temporary directory; PostgreSQL in its own database
(``smstrack_bench`` by default, created if missing and emptied first).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: What every fill below shares: the columns written, and each synthetic
#: click's kind, device, OS, browser, country, address and referrer from its
#: number ``i``.
_SHARED = {
    "clicks_into": """INSERT INTO smstrack_clicks (click_id, created_at, link_id, campaign_id, kind, is_first,
    human_confirmed, visitor_id, device_type, os, browser, country, ip, referrer_host)
""",
    "click_columns": """    CASE WHEN i % 13 = 0 THEN 'preview' WHEN i % 31 = 0 THEN 'bot' ELSE 'human' END,
    i % 5 != 0, i % 3 = 0, NULL,
    CASE i % 4 WHEN 0 THEN 'desktop' WHEN 1 THEN 'tablet' ELSE 'mobile' END,
    CASE i % 3 WHEN 0 THEN 'iOS' WHEN 1 THEN 'Android' ELSE 'Windows' END,
    CASE i % 5 WHEN 0 THEN 'Chrome' WHEN 1 THEN 'Mobile Safari' ELSE 'Chrome Mobile' END,
    CASE i % 7 WHEN 0 THEN 'US' WHEN 1 THEN 'GB' WHEN 2 THEN 'DE' WHEN 3 THEN 'CA' ELSE 'FR' END,
    '81.2.69.0', CASE WHEN i % 11 = 0 THEN 'l.instagram.com' END
""",
    "conversions_into": """INSERT INTO smstrack_conversions (created_at, click_pk, reported_click_id, campaign_id,
    link_id, event, revenue, currency, order_id, source, trust)
""",
}

SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :clicks)
{clicks_into}SELECT printf('c%09d', i), datetime(:start, '+' || (i * 37 % 604800) || ' seconds'),
    :link_a + (i % 2), :campaign,
{click_columns}FROM n
""".format(**_SHARED)
SQLITE_CONVERT = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :conversions)
{conversions_into}SELECT datetime(c.created_at, '+' || (n.i % 7200) || ' seconds'), c.id, c.click_id, :campaign,
    c.link_id, 'purchase', 19.99 + (n.i % 50), 'USD', 'bench-' || n.i, 'snippet', 'unverified'
FROM n JOIN smstrack_clicks c ON c.id = n.i * (:clicks / :conversions)
""".format(**_SHARED)
PG_FILL = """
{clicks_into}SELECT 'c' || lpad(i::text, 9, '0'), CAST(:start AS timestamptz) + make_interval(secs => i * 37 % 604800),
    :link_a + (i % 2), :campaign,
{click_columns}FROM generate_series(1, :clicks) i
""".format(**_SHARED)
PG_CONVERT = """
{conversions_into}SELECT c.created_at + make_interval(secs => n.i % 7200), c.id, c.click_id, :campaign,
    c.link_id, 'purchase', 19.99 + (n.i % 50), 'USD', 'bench-' || n.i, 'snippet', 'unverified'
FROM generate_series(1, :conversions) n(i)
JOIN smstrack_clicks c ON c.id = n.i * (:clicks / :conversions)
""".format(**_SHARED)


LIST_SQLITE_CAMPAIGNS = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :campaigns - 1)
INSERT INTO smstrack_campaigns (owner_id, name, currency, cost_per_message, sent, sent_at, status, created_at)
SELECT :owner, printf('Campaign %04d', i), CASE WHEN i % 10 = 0 THEN 'EUR' ELSE 'USD' END,
    0.0079 + (i % 7) * 0.001, 10000 + i, datetime(:start, '+' || (i * 600) || ' seconds'), 'sent', :start
FROM n ORDER BY i
"""
LIST_SQLITE_LINKS = """
INSERT INTO smstrack_links (campaign_id, code, destination_url, append_click_id, created_at)
SELECT id, 'b' || id, 'https://example.com/' || id, 1, created_at FROM smstrack_campaigns ORDER BY id
"""
LIST_SQLITE_CLICKS = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :clicks - 1)
{clicks_into}SELECT printf('m%010d', i), datetime(:start, '+' || ((i / :per) * 600 + (i * 37 % 604800)) || ' seconds'),
    :link0 + i / :per, :campaign0 + i / :per,
{click_columns}FROM n
""".format(**_SHARED)
LIST_SQLITE_CONVERT = """
{conversions_into}SELECT datetime(c.created_at, '+' || (c.id % 7200) || ' seconds'), c.id, c.click_id, c.campaign_id,
    c.link_id, 'purchase', 19.99 + (c.id % 50), CASE WHEN (c.campaign_id - :campaign0) % 10 = 0 THEN 'EUR' ELSE 'USD' END,
    'list-' || c.id, 'snippet', 'unverified'
FROM smstrack_clicks c WHERE c.id % 100 = 7
""".format(**_SHARED)
LIST_PG_CAMPAIGNS = """
INSERT INTO smstrack_campaigns (owner_id, name, currency, cost_per_message, sent, sent_at, status, created_at)
SELECT :owner, 'Campaign ' || lpad(i::text, 4, '0'), CASE WHEN i % 10 = 0 THEN 'EUR' ELSE 'USD' END,
    0.0079 + (i % 7) * 0.001, 10000 + i, CAST(:start AS timestamptz) + make_interval(secs => i * 600), 'sent',
    CAST(:start AS timestamptz)
FROM generate_series(0, :campaigns - 1) i ORDER BY i
"""
LIST_PG_LINKS = """
INSERT INTO smstrack_links (campaign_id, code, destination_url, append_click_id, created_at)
SELECT id, 'b' || id, 'https://example.com/' || id, true, created_at FROM smstrack_campaigns ORDER BY id
"""
LIST_PG_CLICKS = """
{clicks_into}SELECT 'm' || lpad(i::text, 10, '0'),
    CAST(:start AS timestamptz) + make_interval(secs => (i / :per) * 600 + (i * 37 % 604800)),
    :link0 + i / :per, :campaign0 + i / :per,
{click_columns}FROM generate_series(0, :clicks - 1) i
""".format(**_SHARED)
LIST_PG_CONVERT = """
{conversions_into}SELECT c.created_at + make_interval(secs => c.id % 7200), c.id, c.click_id, c.campaign_id,
    c.link_id, 'purchase', 19.99 + (c.id % 50), CASE WHEN (c.campaign_id - :campaign0) % 10 = 0 THEN 'EUR' ELSE 'USD' END,
    'list-' || c.id, 'snippet', 'unverified'
FROM smstrack_clicks c WHERE c.id % 100 = 7
""".format(**_SHARED)


def _ensure_pg_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = create_engine(target)
    with engine.begin() as conn:
        for (name,) in conn.execute(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'smstrack_%'")):
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def measure(url: str, clicks: int, conversions: int, runs: int) -> dict:
    import datetime as dt

    from sqlalchemy import text
    from wsgi import create_app, db

    from flask_smstrack.auth import create_user
    from flask_smstrack.db.migrate import upgrade
    from flask_smstrack.manage import create_campaign, create_link
    from flask_smstrack.models import Campaign
    from flask_smstrack.reports import rollups
    from flask_smstrack.schemas import CampaignSchema, LinkSchema

    instance = tempfile.mkdtemp(prefix="smstrack-bench-")
    os.environ["SMSTRACK_INSTANCE_PATH"] = instance
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
    dialect = ""
    with app.app_context():
        upgrade()
        dialect = db.engine.dialect.name
        user = create_user("bench@example.com", "bench-password", is_admin=True)
        start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=8)
        campaign = create_campaign(
            CampaignSchema().load(
                {"name": "Bench", "currency": "USD", "cost_per_message": "0.0079", "sent": 200000,
                 "sent_at": start.isoformat()}
            ),
            str(user.id),
        )
        a = create_link(campaign, LinkSchema().load({"destination_url": "https://example.com/a"}))
        create_link(campaign, LinkSchema().load({"destination_url": "https://example.com/b"}))
        params = {"clicks": clicks, "conversions": conversions, "campaign": campaign.id, "link_a": a.id,
                  "start": start.strftime("%Y-%m-%d %H:%M:%S") + ("+00:00" if dialect == "postgresql" else "")}
        t = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(text(PG_FILL if dialect == "postgresql" else SQLITE_FILL), params)
            conn.execute(text(PG_CONVERT if dialect == "postgresql" else SQLITE_CONVERT), params)
            if dialect == "postgresql":
                conn.execute(text("ANALYZE"))
        fill = time.perf_counter() - t
        campaign_id, user_id = campaign.id, user.get_id()
        t = time.perf_counter()
        rollups.refresh(db.session.get(Campaign, campaign_id))
        rollup = time.perf_counter() - t

    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user_id
        session["_fresh"] = True
    page_times, api_times = [], []
    for _ in range(runs):
        t = time.perf_counter()
        response = client.get(f"/smstrack/campaigns/{campaign_id}")
        page_times.append(time.perf_counter() - t)
        if response.status_code != 200:
            raise SystemExit(f"campaign page answered {response.status_code}")
        t = time.perf_counter()
        for name in ("summary", "timeseries", "links", "devices", "countries", "heatmap_clicks", "send_to_click"):
            assert client.get(f"/smstrack/api/v1/campaigns/{campaign_id}/tables/{name}").status_code == 200
        api_times.append(time.perf_counter() - t)
    with app.app_context():
        db.engine.dispose()
    return {
        "database": dialect,
        "clicks": clicks,
        "conversions": conversions,
        "fill_s": fill,
        "first_rollup_s": rollup,
        "page_median_ms": statistics.median(page_times) * 1000,
        "page_max_ms": max(page_times) * 1000,
        "api_tables_median_ms": statistics.median(api_times) * 1000,
    }


def _timed(client, url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - t)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return times


def _statements(engine, client, url: str) -> int:
    from sqlalchemy import event

    seen = []

    def count(*_args) -> None:
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def measure_list(url: str, campaigns: int, per: int, runs: int) -> dict:
    import datetime as dt

    from sqlalchemy import func, select, text
    from wsgi import create_app, db

    from flask_smstrack.auth import create_api_key, create_user
    from flask_smstrack.db.migrate import upgrade
    from flask_smstrack.models import Campaign, Link

    instance = tempfile.mkdtemp(prefix="smstrack-bench-")
    os.environ["SMSTRACK_INSTANCE_PATH"] = instance
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
    with app.app_context():
        upgrade()
        dialect = db.engine.dialect.name
        pg = dialect == "postgresql"
        user = create_user("list@example.com", "bench-password")
        key, _ = create_api_key(str(user.id))
        start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=30)
        params = {"campaigns": campaigns, "per": per, "clicks": campaigns * per, "owner": str(user.id),
                  "start": start.strftime("%Y-%m-%d %H:%M:%S") + ("+00:00" if pg else "")}
        t = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(text(LIST_PG_CAMPAIGNS if pg else LIST_SQLITE_CAMPAIGNS), params)
            conn.execute(text(LIST_PG_LINKS if pg else LIST_SQLITE_LINKS), params)
            (c0, c1), (l0, l1) = (
                conn.execute(select(func.min(m.id), func.max(m.id))).one() for m in (Campaign, Link)
            )
            assert c1 - c0 + 1 == campaigns and l1 - l0 + 1 == campaigns, "ids are not consecutive"
            params.update(campaign0=c0, link0=l0)
            conn.execute(text(LIST_PG_CLICKS if pg else LIST_SQLITE_CLICKS), params)
            conn.execute(text(LIST_PG_CONVERT if pg else LIST_SQLITE_CONVERT), params)
            if pg:
                conn.execute(text("ANALYZE"))
        fill = time.perf_counter() - t
        engine = db.engine
        user_id = user.get_id()

    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user_id
        session["_fresh"] = True
    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    with app.app_context():
        # What the import's catch-up job does (reports never build rollups).
        from flask_smstrack.reports.rollups import catch_up

        t = time.perf_counter()
        catch_up()
        first = time.perf_counter() - t
    page = min(3, -(-campaigns // 50))
    pages = {
        "list": (client, "/smstrack/"),
        "list by ROI": (client, f"/smstrack/?sort=roi&page={page}"),
        "API table": (api, "/smstrack/api/v1/campaigns/table?sort=clicks"),
    }
    out = {"database": dialect, "campaigns": campaigns, "clicks": campaigns * per, "fill_s": fill, "first_s": first}
    for name, (who, path) in pages.items():
        times = _timed(who, path, runs)
        out[name] = (statistics.median(times) * 1000, max(times) * 1000, _statements(engine, who, path))
    with app.app_context():
        db.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/smstrack_bench")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--campaigns", type=int, default=1_000, help="campaigns in the list")
    parser.add_argument("--campaign-clicks", type=int, default=5_000, help="clicks per campaign in the list")
    parser.add_argument("--only", choices=("page", "list"), help="run one part only")
    args = parser.parse_args()
    urls = []
    with tempfile.TemporaryDirectory(prefix="smstrack-bench-") as tmp:
        urls.append(f"sqlite:///{tmp}/bench.db")
        if not args.no_pg:
            urls.append(args.pg_url)
        if args.only != "list":
            results = []
            for url in urls:
                if url.startswith("postgresql"):
                    _ensure_pg_database(url)
                results.append(measure(url, args.clicks, args.conversions, args.runs))
            print(f"{'database':<11}{'clicks':>10}{'conv.':>8}{'fill s':>9}{'1st rollup s':>14}"
                  f"{'page p50 ms':>13}{'page max ms':>13}{'7 API tables ms':>17}")
            for r in results:
                print(f"{r['database']:<11}{r['clicks']:>10}{r['conversions']:>8}{r['fill_s']:>9.1f}"
                      f"{r['first_rollup_s']:>14.1f}{r['page_median_ms']:>13.0f}{r['page_max_ms']:>13.0f}"
                      f"{r['api_tables_median_ms']:>17.0f}")
        if args.only != "page":
            results = []
            for url in urls:
                if url.startswith("postgresql"):
                    _ensure_pg_database(url)
                else:
                    url = f"sqlite:///{tmp}/list.db"
                results.append(measure_list(url, args.campaigns, args.campaign_clicks, args.runs))
            print(f"\nCampaign list: p50 / worst of {args.runs} loads in ms, SQL statements per load")
            print(f"{'database':<11}{'campaigns':>10}{'clicks':>10}{'fill s':>8}{'catch-up s':>11}"
                  + "".join(f"{name:>24}" for name in ("list (newest first)", "list by ROI (page 3)", "API table by clicks")))
            for r in results:
                cells = "".join(f"{f'{p50:.0f} / {worst:.0f} ms, {n} st.':>24}" for p50, worst, n in
                                (r["list"], r["list by ROI"], r["API table"]))
                print(f"{r['database']:<11}{r['campaigns']:>10}{r['clicks']:>10}{r['fill_s']:>8.1f}{r['first_s']:>11.1f}"
                      + cells)


if __name__ == "__main__":
    main()
