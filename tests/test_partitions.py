"""Clicks partitioned by month on PostgreSQL (revision 0010): the migration
keeps every row and id, partitions are made ahead, rows in DEFAULT move into
their month's new partition, retention drops whole months with the reports
unchanged, and clicks at a month's edge land in the right partition."""
from __future__ import annotations

import datetime as dt
import re
import secrets
import threading

import pytest
from sqlalchemy import select, text, update

from flask_smstrack.db.partitions import (
    DEFAULT,
    add_months,
    ensure_partitions,
    list_partitions,
    missing_months,
    month_of,
    partition_name,
)
from flask_smstrack.tracking.clicks import click_id_at

UTC = dt.timezone.utc


@pytest.fixture(autouse=True)
def _postgresql_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("partitions are PostgreSQL's (SQLite keeps one clicks table)")


def _db():
    from wsgi import db

    return db


def _sql(sql, **params):
    with _db().engine.begin() as conn:
        return conn.execute(text(sql), params)


def _campaign() -> tuple[int, int]:
    """A campaign and its link, made straight in the tables."""
    cid = _sql("INSERT INTO smstrack_campaigns (owner_id, name, currency, status, created_at)"
               " VALUES ('7', 'Partitioned', 'USD', 'draft', now()) RETURNING id").scalar_one()
    link = _sql("INSERT INTO smstrack_links (campaign_id, code, destination_url, append_click_id, created_at)"
                " VALUES (:c, :code, 'https://shop.example.com/', true, now()) RETURNING id",
                c=cid, code=secrets.token_hex(4)).scalar_one()
    return cid, link


def _add_clicks(cid: int, link: int, times: list[dt.datetime]) -> None:
    rows = [{"click_id": click_id_at(int(t.timestamp() * 1000), secrets.token_bytes(12)), "t": t, "link": link,
             "cid": cid} for t in times]
    with _db().engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO smstrack_clicks (click_id, created_at, link_id, campaign_id, kind, is_first, human_confirmed)"
            " VALUES (:click_id, :t, :link, :cid, 'human', true, false)"
        ), rows)


def _where(click_pk: int) -> str:
    return _sql("SELECT tableoid::regclass::text FROM smstrack_clicks WHERE id = :i", i=click_pk).scalar_one()


def _drop_past_partitions(before: dt.date) -> None:
    """Tests share the database: partitions they made for past months go."""
    with _db().engine.begin() as conn:
        for p in list_partitions(conn):
            if p.start is not None and p.start.date() < before:
                conn.execute(text(f'DROP TABLE "{p.name}"'))


def test_migration_keeps_rows_and_ids(app):
    from flask_smstrack.db.migrate import current_revision, downgrade, head_revision, upgrade

    now = dt.datetime.now(UTC)
    with app.app_context():
        downgrade("0009")
        try:
            cid, link = _campaign()
            times = [now - dt.timedelta(days=d, minutes=7 * d) for d in (0, 1, 33, 34, 70, 400)]
            _add_clicks(cid, link, times)
            _sql("INSERT INTO smstrack_conversions (created_at, owner_id, click_pk, campaign_id, event, source, trust,"
                 " refunded) SELECT now(), '7', max(id), :c, 'purchase', 'server', 'verified', 0"
                 " FROM smstrack_clicks", c=cid)
            before = _sql("SELECT id, click_id, created_at FROM smstrack_clicks ORDER BY id").all()
            upgrade()
            assert current_revision() == head_revision()
            after = _sql("SELECT id, click_id, created_at FROM smstrack_clicks ORDER BY id").all()
            print(f"clicks before: {len(before)}, after: {len(after)}")
            assert after == before
            with _db().engine.connect() as conn:
                names = {p.name for p in list_partitions(conn)}
            months = {partition_name(month_of(t)) for t in times}
            ahead = {partition_name(add_months(month_of(now), n)) for n in range(4)}
            assert months | ahead | {DEFAULT} == names
            assert _sql(f"SELECT count(*) FROM {DEFAULT}").scalar_one() == 0
            # The conversion stays attributed; a new click gets the next id.
            assert _sql("SELECT click_pk FROM smstrack_conversions").scalar_one() == before[-1][0]
            _add_clicks(cid, link, [now])
            assert _sql("SELECT max(id) FROM smstrack_clicks").scalar_one() == before[-1][0] + 1
            # Deleting a click unattributes its conversion, as the foreign key did.
            _sql("DELETE FROM smstrack_clicks WHERE id = :i", i=before[-1][0])
            assert _sql("SELECT click_pk FROM smstrack_conversions").scalar_one() is None
            _sql("UPDATE smstrack_conversions SET click_pk = :i", i=before[0][0])
            _sql("DELETE FROM smstrack_campaigns WHERE id = :c", c=cid)  # its clicks go too
            assert _sql("SELECT click_pk, campaign_id FROM smstrack_conversions").one() == (None, None)
            _sql("INSERT INTO smstrack_campaigns (id, owner_id, name, currency, status, created_at)"
                 " VALUES (:c, '7', 'Again', 'USD', 'draft', now())", c=cid)
            _sql("INSERT INTO smstrack_links (campaign_id, code, destination_url, append_click_id, created_at)"
                 " VALUES (:c, 'again', 'https://shop.example.com/', true, now())", c=cid)
            link = _sql("SELECT id FROM smstrack_links WHERE code = 'again'").scalar_one()
            _add_clicks(cid, link, times)
            before = _sql("SELECT id, click_id, created_at FROM smstrack_clicks ORDER BY id").all()
            # And back: a plain table with the same rows.
            downgrade("0009")
            assert _sql("SELECT count(*) FROM smstrack_clicks").scalar_one() == len(before)
            assert not _sql("SELECT 1 FROM pg_partitioned_table").first()
        finally:
            upgrade()
            _drop_past_partitions(month_of(now))


def test_partitions_made_ahead_once_even_concurrently(app):
    now = dt.datetime.now(UTC)
    with app.app_context():
        with _db().engine.begin() as conn:
            last = add_months(month_of(now), 3)
            conn.execute(text(f'DROP TABLE IF EXISTS "{partition_name(add_months(month_of(now), 1))}"'))
            assert missing_months(conn) == [add_months(month_of(now), 1)]
        health = app.test_client().get("/smstrack/healthz").json["checks"]["partitions"]
        assert health["status"] == "warning" and "--create-ahead" in health["message"]
    made: list[list[str]] = []

    def run():
        with app.app_context():
            made.append(ensure_partitions(months_ahead=6))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wanted = [partition_name(add_months(month_of(now), n)) for n in (1, 4, 5, 6)]
    print(f"made per run: {made}")
    assert sorted(sum(made, [])) == sorted(wanted)  # each once
    with app.app_context():
        assert ensure_partitions(months_ahead=6) == []
        with _db().engine.connect() as conn:
            assert missing_months(conn) == []
        assert app.test_client().get("/smstrack/healthz").json["checks"]["partitions"] == {"status": "ok"}
        with _db().engine.begin() as conn:  # back to three months ahead
            for n in (4, 5, 6):
                conn.execute(text(f'DROP TABLE "{partition_name(add_months(month_of(now), n))}"'))
    assert last == add_months(month_of(now), 3)


def test_rows_in_default_move_into_their_new_partition(app, runner):
    now = dt.datetime.now(UTC)
    old = add_months(month_of(now), -30)
    with app.app_context():
        try:
            cid, link = _campaign()
            _add_clicks(cid, link, [dt.datetime(old.year, old.month, d, 12, tzinfo=UTC) for d in (1, 2, 3)])
            _add_clicks(cid, link, [now])
            _sql("INSERT INTO smstrack_conversions (created_at, owner_id, click_pk, campaign_id, event, source, trust,"
                 " refunded) SELECT now(), '7', min(id), :c, 'purchase', 'server', 'verified', 0"
                 " FROM smstrack_clicks", c=cid)
            ids = _sql("SELECT id FROM smstrack_clicks ORDER BY id").scalars().all()
            assert [_where(i) for i in ids[:3]] == [DEFAULT] * 3
            listing = runner.invoke(args=["smstrack", "partitions", "--exact"])
            assert listing.exit_code == 0, listing.output
            assert re.search(rf"{DEFAULT}\s+-\s+-\s+3\s", listing.output), listing.output
            assert "--create-ahead" in listing.output
            result = runner.invoke(args=["smstrack", "partitions", "--create-ahead", "--exact"])
            assert result.exit_code == 0, result.output
            print(result.output)
            assert f"Made 1 partition(s): {partition_name(old)}" in result.output
            assert [_where(i) for i in ids[:3]] == [partition_name(old)] * 3
            assert _sql(f"SELECT count(*) FROM {DEFAULT}").scalar_one() == 0
            assert _sql("SELECT count(*) FROM smstrack_clicks").scalar_one() == 4
            # Moved, not deleted: the conversion is still attributed.
            assert _sql("SELECT click_pk FROM smstrack_conversions").scalar_one() == ids[0]
        finally:
            _drop_past_partitions(month_of(now))


def test_click_at_a_month_boundary(app):
    from flask_smstrack.models import Click

    now = dt.datetime.now(UTC)
    edge = dt.datetime.combine(add_months(month_of(now), 1), dt.time(), tzinfo=UTC)
    with app.app_context():
        cid, link = _campaign()
        session = _db().session
        for t in (edge - dt.timedelta(microseconds=1), edge):
            session.add(Click(click_id=click_id_at(int(t.timestamp() * 1000), secrets.token_bytes(12)),
                              created_at=t, link_id=link, campaign_id=cid, kind="human"))
        session.commit()
        rows = session.execute(select(Click.id, Click.created_at).order_by(Click.id)).all()
        assert [r.created_at for r in rows] == [edge - dt.timedelta(microseconds=1), edge]
        assert [_where(r.id) for r in rows] == [partition_name(month_of(now)), partition_name(month_of(edge))]
        # A click moved across the edge changes partition and keeps its id.
        session.execute(update(Click).where(Click.id == rows[0].id).values(created_at=edge + dt.timedelta(hours=1)))
        session.commit()
        assert _where(rows[0].id) == partition_name(month_of(edge))


def _report_snapshot(app, actions, key, cid) -> dict:
    from test_dashboard import login
    from test_purge import _CSRF_VALUE

    snap = {"report": actions.report(key, cid)}
    for name in actions.api("GET", f"/campaigns/{cid}/tables", key).json["tables"]:
        snap[name] = actions.api("GET", f"/campaigns/{cid}/tables/{name}?tz=UTC", key).json
    snap["clicked"] = actions.api("GET", f"/campaigns/{cid}/recipients?segment=clicked&limit=1000", key).json
    page = login(app).get(f"/smstrack/campaigns/{cid}")
    assert page.status_code == 200
    snap["page"] = _CSRF_VALUE.sub(lambda m: m.group(1) or m.group(2), page.text)
    return snap


def test_retention_drops_whole_months_and_reports_stay(app, runner, actions):
    """A Spring sale sent on 30 June: June's clicks go with their partition,
    July's before the cut row by row, and every number stays."""
    from flask_smstrack.demo.spring_sale import create_demo_campaign
    from flask_smstrack.reports.rollups import reset

    actions.user("owner@example.com", admin=True)
    key = actions.api_key("owner@example.com")
    june, july = dt.date(2026, 6, 1), dt.date(2026, 7, 1)
    cut = dt.datetime(2026, 7, 3, tzinfo=UTC)
    try:
        with app.test_request_context():
            from flask_smstrack.auth import find_user

            owner = str(find_user("owner@example.com").id)
            cid = create_demo_campaign(clicks=500, seed=5, owner_id=owner,
                                       now=dt.datetime(2026, 7, 8, 12, tzinfo=UTC)).id
            assert partition_name(june) in ensure_partitions()
            # Conversions come within the hour of their click: none from the
            # cut on is attributed to a June click (which would keep it).
            _sql("UPDATE smstrack_conversions v SET created_at = c.created_at + interval '40 minutes'"
                 " FROM smstrack_clicks c WHERE c.id = v.click_pk")
            reset(cid)
        with app.app_context():
            counts = dict(_sql("SELECT tableoid::regclass::text, count(*) FROM smstrack_clicks GROUP BY 1").all())
            late = _sql("SELECT count(*) FROM smstrack_clicks WHERE created_at >= :c", c=cut).scalar_one()
        print(f"clicks per partition: {counts}; from the cut on: {late}")
        assert counts[partition_name(june)] > 50 and counts[partition_name(july)] > late > 0
        before = _report_snapshot(app, actions, key, cid)
        assert before["report"]["clicks"] > 0

        result = runner.invoke(args=["smstrack", "purge", "--before", cut.isoformat()])
        assert result.exit_code == 0, result.output
        total = int(re.search(r"Total\s+(\d+)", result.output)[1])
        assert total == counts[partition_name(june)] + counts[partition_name(july)] - late
        with app.app_context(), _db().engine.connect() as conn:
            names = {p.name for p in list_partitions(conn)}
            assert partition_name(june) not in names and partition_name(july) in names
            assert _sql("SELECT count(*) FROM smstrack_clicks").scalar_one() == late
            assert _sql("SELECT min(created_at) FROM smstrack_clicks").scalar_one() >= cut

        after = _report_snapshot(app, actions, key, cid)
        for name in before:
            assert after[name] == before[name], name
    finally:
        with app.app_context():
            _drop_past_partitions(month_of(dt.datetime.now(UTC)))


def test_retention_keeps_a_month_holding_a_kept_click(app, runner):
    """A month with a click a conversion from after the cut is attributed to
    is not dropped: its other clicks go row by row, that one stays."""
    now = dt.datetime.now(UTC)
    old = add_months(month_of(now), -30)
    try:
        with app.app_context():
            cid, link = _campaign()
            _add_clicks(cid, link, [dt.datetime(old.year, old.month, d, 9, tzinfo=UTC) for d in range(1, 11)])
            kept = _sql("SELECT min(id) FROM smstrack_clicks").scalar_one()
            _sql("INSERT INTO smstrack_conversions (created_at, owner_id, click_pk, campaign_id, event, source, trust,"
                 " refunded) VALUES (now(), '7', :k, :c, 'purchase', 'server', 'verified', 0)", k=kept, c=cid)
            assert partition_name(old) in ensure_partitions()
        cut = dt.datetime.combine(add_months(old, 2), dt.time(), tzinfo=UTC)
        result = runner.invoke(args=["smstrack", "purge", "--before", cut.isoformat()])
        assert result.exit_code == 0, result.output
        assert re.search(r"Total\s+9\s+0\s+1", result.output), result.output
        with app.app_context():
            assert _sql("SELECT array_agg(id) FROM smstrack_clicks").scalar_one() == [kept]
            assert _where(kept) == partition_name(old)
            assert _sql("SELECT click_pk FROM smstrack_conversions").scalar_one() == kept
    finally:
        with app.app_context():
            _drop_past_partitions(month_of(now))
