"""Benchmark: report page views right after a large import, before and
after the rollups catch up, on SQLite and on PostgreSQL.

    python bench/rollup_catchup.py [--clicks 1000000] [--conversions 30000]
                                   [--campaigns 500] [--campaign-clicks 2000]
                                   [--only page|list] [--runs 5]
                                   [--pg-url URL | --no-pg]

Reports only read: a GET counts what is rolled up plus the live rows after
each campaign's cut, and never builds rollups. This times, as a logged-in
user, with the same synthetic data as bench/report_page.py:

- page: one campaign with ``--clicks`` clicks and ``--conversions``
  conversions written straight to the tables (a bulk import, no rollups):
  the first API report ``GET /smstrack/api/v1/campaigns/<id>/report`` and
  campaign page ``GET /smstrack/campaigns/<id>`` (every row read live), then
  ``catch_up`` (the job the import starts), then the same GETs (median of
  ``--runs``), checking that the report's numbers are the same;
- list: ``--campaigns`` campaigns with ``--campaign-clicks`` clicks each,
  no rollups: the first view of the list ``GET /smstrack/``, ``catch_up``
  of every campaign, and the list again.

Each GET is checked to leave the rollup tables as they were (row counts).
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
sys.path.insert(0, str(ROOT / "bench"))

import report_page as fills  # noqa: E402  (the synthetic data)

ROLLUP_TABLES = ("smstrack_rollup_state", "smstrack_rollup_clicks", "smstrack_rollup_click_dims",
                 "smstrack_rollup_conversions")


def _app(url: str):
    from wsgi import create_app

    os.environ["SMSTRACK_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="smstrack-bench-")
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})


def _rollup_counts(app) -> tuple[int, ...]:
    from sqlalchemy import text
    from wsgi import db

    with app.app_context():
        counts = tuple(db.session.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ROLLUP_TABLES)
        db.session.commit()
    return counts


def _get(app, client, url: str) -> tuple[float, object]:
    """One GET, timed; checks it changed no rollup."""
    before = _rollup_counts(app)
    t = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - t
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code} {response.headers.get('Location')}")
    if _rollup_counts(app) != before:
        raise SystemExit(f"GET {url} changed the rollups")
    return elapsed, response.json if response.is_json else None


def _catch_up(app) -> float:
    from flask_smstrack.reports.rollups import catch_up

    with app.app_context():
        t = time.perf_counter()
        catch_up()
        return time.perf_counter() - t


def _logged_in(app, session_id: str):
    """A client with the session of the user whose ``get_id()`` is ``session_id``."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = session_id
        session["_fresh"] = True
    return client


def measure_page(url: str, clicks: int, conversions: int, runs: int) -> dict:
    from sqlalchemy import text
    from wsgi import db

    from flask_smstrack.auth import create_api_key, create_user
    from flask_smstrack.db.migrate import upgrade
    from flask_smstrack.manage import create_campaign, create_link
    from flask_smstrack.schemas import CampaignSchema, LinkSchema

    app = _app(url)
    with app.app_context():
        upgrade()
        dialect = db.engine.dialect.name
        pg = dialect == "postgresql"
        user = create_user("bench@example.com", "bench-password", is_admin=True)
        start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=8)
        campaign = create_campaign(
            CampaignSchema().load({"name": "Bench", "currency": "USD", "cost_per_message": "0.0079",
                                   "sent": 200000, "sent_at": start.isoformat()}),
            str(user.id),
        )
        a = create_link(campaign, LinkSchema().load({"destination_url": "https://example.com/a"}))
        create_link(campaign, LinkSchema().load({"destination_url": "https://example.com/b"}))
        link_a = a.id
        campaign_id, user_id, session_id = campaign.id, user.id, user.get_id()
        key, _ = create_api_key(str(user_id))
    # Warm up (templates compiled, connections open) on the empty campaign.
    client = _logged_in(app, session_id)
    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    report_url, page_url = f"/smstrack/api/v1/campaigns/{campaign_id}/report", f"/smstrack/campaigns/{campaign_id}"
    _get(app, api, report_url)
    _get(app, client, page_url)
    with app.app_context():
        params = {"clicks": clicks, "conversions": conversions, "campaign": campaign_id, "link_a": link_a,
                  "start": start.strftime("%Y-%m-%d %H:%M:%S") + ("+00:00" if pg else "")}
        t = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(text(fills.PG_FILL if pg else fills.SQLITE_FILL), params)
            conn.execute(text(fills.PG_CONVERT if pg else fills.SQLITE_CONVERT), params)
            if pg:
                conn.execute(text("ANALYZE"))
        fill = time.perf_counter() - t
    assert _rollup_counts(app) == (0, 0, 0, 0), "the import left rollups"
    first_report, live = _get(app, api, report_url)
    first_page, _ = _get(app, client, page_url)
    catch_up = _catch_up(app)
    reports, pages = [], []
    for _ in range(runs):
        elapsed, rolled = _get(app, api, report_url)
        reports.append(elapsed)
        pages.append(_get(app, client, page_url)[0])
    if rolled != live:
        raise SystemExit("the report changed with the catch-up")
    with app.app_context():
        db.engine.dispose()
    return {"database": dialect, "clicks": clicks, "conversions": conversions, "fill_s": fill,
            "first_report_s": first_report, "first_page_s": first_page, "catch_up_s": catch_up,
            "report_ms": statistics.median(reports) * 1000, "page_ms": statistics.median(pages) * 1000}


def measure_list(url: str, campaigns: int, per: int, runs: int) -> dict:
    from sqlalchemy import func, select, text
    from wsgi import db

    from flask_smstrack.auth import create_user
    from flask_smstrack.db.migrate import upgrade
    from flask_smstrack.models import Campaign, Link

    app = _app(url)
    with app.app_context():
        upgrade()
        dialect = db.engine.dialect.name
        pg = dialect == "postgresql"
        user = create_user("list@example.com", "bench-password")
        session_id, owner = user.get_id(), str(user.id)
    client = _logged_in(app, session_id)
    _get(app, client, "/smstrack/")  # warm up on the empty list
    with app.app_context():
        start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=30)
        params = {"campaigns": campaigns, "per": per, "clicks": campaigns * per, "owner": owner,
                  "start": start.strftime("%Y-%m-%d %H:%M:%S") + ("+00:00" if pg else "")}
        t = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(text(fills.LIST_PG_CAMPAIGNS if pg else fills.LIST_SQLITE_CAMPAIGNS), params)
            conn.execute(text(fills.LIST_PG_LINKS if pg else fills.LIST_SQLITE_LINKS), params)
            (c0, c1), (l0, l1) = (conn.execute(select(func.min(m.id), func.max(m.id))).one() for m in (Campaign, Link))
            assert c1 - c0 + 1 == campaigns and l1 - l0 + 1 == campaigns, "ids are not consecutive"
            params.update(campaign0=c0, link0=l0)
            conn.execute(text(fills.LIST_PG_CLICKS if pg else fills.LIST_SQLITE_CLICKS), params)
            conn.execute(text(fills.LIST_PG_CONVERT if pg else fills.LIST_SQLITE_CONVERT), params)
            if pg:
                conn.execute(text("ANALYZE"))
        fill = time.perf_counter() - t
    first, _ = _get(app, client, "/smstrack/")
    by_roi, _ = _get(app, client, f"/smstrack/?sort=roi&page={min(3, -(-campaigns // 50))}")
    catch_up = _catch_up(app)
    after = [_get(app, client, "/smstrack/")[0] for _ in range(runs)]
    with app.app_context():
        db.engine.dispose()
    return {"database": dialect, "campaigns": campaigns, "clicks": campaigns * per, "fill_s": fill,
            "first_s": first, "roi_s": by_roi, "catch_up_s": catch_up, "after_ms": statistics.median(after) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=30_000)
    parser.add_argument("--campaigns", type=int, default=500)
    parser.add_argument("--campaign-clicks", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/smstrack_bench")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--only", choices=("page", "list"), help="run one part only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smstrack-bench-") as tmp:
        urls = [] if args.no_sqlite else [f"sqlite:///{tmp}/page.db"]
        if not args.no_pg:
            urls.append(args.pg_url)
        if args.only != "list":
            print(f"{'database':<11}{'clicks':>9}{'conv.':>7}{'fill s':>8}{'1st report s':>13}{'1st page s':>11}"
                  f"{'catch_up s':>11}{'report ms':>10}{'page ms':>9}", flush=True)
            for url in urls:
                if url.startswith("postgresql"):
                    fills._ensure_pg_database(url)
                r = measure_page(url, args.clicks, args.conversions, args.runs)
                print(f"{r['database']:<11}{r['clicks']:>9}{r['conversions']:>7}{r['fill_s']:>8.1f}"
                      f"{r['first_report_s']:>13.2f}{r['first_page_s']:>11.2f}{r['catch_up_s']:>11.1f}"
                      f"{r['report_ms']:>10.0f}{r['page_ms']:>9.0f}", flush=True)
        if args.only != "page":
            print(f"\n{'database':<11}{'campaigns':>10}{'clicks':>9}{'fill s':>8}{'1st list s':>11}"
                  f"{'by ROI p3 s':>12}{'catch_up s':>11}{'list ms':>9}", flush=True)
            for url in urls:
                if url.startswith("postgresql"):
                    fills._ensure_pg_database(url)
                else:
                    url = f"sqlite:///{tmp}/list.db"
                r = measure_list(url, args.campaigns, args.campaign_clicks, args.runs)
                print(f"{r['database']:<11}{r['campaigns']:>10}{r['clicks']:>9}{r['fill_s']:>8.1f}{r['first_s']:>11.2f}"
                      f"{r['roi_s']:>12.2f}{r['catch_up_s']:>11.1f}{r['after_ms']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
