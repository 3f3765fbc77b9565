"""Reports only read the rollups; the catch-up job builds them.

Right after an import nothing is rolled up: every report GET (the API
report and its CSV, the campaign page and its CSV tables, the campaign list
on the dashboard and in the API, as JSON and CSV) leaves every rollup table
as it was, and gives the numbers of the raw rows. ``catch_up`` then rolls
everything up, once, safely from two processes at a time, and the same GETs
give the same numbers from the rollups.
"""
import datetime as dt
import threading

from sqlalchemy import func, select

from flask_smstrack.models import Base, Campaign, Click, ClickRollup, RollupState
from flask_smstrack.reports import rollups
from test_campaign_list import _click, _varied
from test_dashboard import login
from test_purge import world  # noqa: F401  (two purgeable demo campaigns)

ROLLUP_TABLES = [t for t in Base.metadata.sorted_tables if t.name.startswith("smstrack_rollup_")]


def _rollup_rows(app) -> dict[str, list]:
    from wsgi import db

    with app.app_context():
        out = {t.name: [tuple(r) for r in db.session.execute(select(t).order_by(*t.primary_key.columns))]
               for t in ROLLUP_TABLES}
        db.session.commit()
    return out


def _imported(app, actions) -> tuple[str, list[int]]:
    """Campaigns, clicks and conversions written straight to the tables, as
    a bulk import does: no rollups yet."""
    from wsgi import db

    key = actions.api_key()
    with app.app_context():
        _varied(db.session, "1")
        db.session.commit()
        ids = list(db.session.execute(select(Campaign.id).where(Campaign.owner_id == "1").order_by(Campaign.id)).scalars())
    return key, ids


def _report_gets(app, key: str, ids: list[int], full: bool = True) -> list[tuple[str, object]]:
    """Every report GET (``full``; else the API's list and reports) with the
    answer a user sees, checking after each one that no rollup table changed."""
    admin = login(app)
    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    gets = [(api, "/smstrack/api/v1/campaigns/table?per_page=200"),
            (api, "/smstrack/api/v1/campaigns/table?format=csv&sort=roi"),
            (api, "/smstrack/api/v1/campaigns"),
            (admin, "/smstrack/"),
            (admin, "/smstrack/?sort=clicks&dir=asc")]
    if not full:
        gets = gets[:1]
    gets += [(api, f"/smstrack/api/v1/campaigns/{cid}/report") for cid in ids]
    # The pages and downloads of a few campaigns: Alpha (variants, three
    # currencies), Foxtrot (recipients, receipts), alpha (no send time).
    for cid in [ids[0], ids[5], ids[8]] if full else ():
        gets += [(api, f"/smstrack/api/v1/campaigns/{cid}/report?format=csv"),
                 (api, f"/smstrack/api/v1/campaigns/{cid}/tables/send_to_click"),
                 (admin, f"/smstrack/campaigns/{cid}"),
                 (admin, f"/smstrack/campaigns/{cid}/tables/timeseries.csv")]
    answers = []
    for client, url in gets:
        before = _rollup_rows(app)
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:300])
        assert _rollup_rows(app) == before, f"GET {url} changed the rollups"
        if response.is_json:
            answers.append((url, response.json))
        elif "csv" in response.mimetype:
            answers.append((url, response.text))
        else:
            answers.append((url, len(response.text) > 0))
    return answers


def _comparable(answers):
    """The answers less what depends on the moment (the page's own clock)."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in ("generated_at", "rolled_until")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    return [(url, clean(a)) for url, a in answers]


def test_report_gets_never_build_rollups_and_catch_up_keeps_the_numbers(app, actions):
    key, ids = _imported(app, actions)
    empty = _rollup_rows(app)
    assert not any(empty.values())
    live = _report_gets(app, key, ids)
    assert _rollup_rows(app) == empty

    with app.app_context():
        moved = rollups.catch_up()
    assert moved == len(ids) + 1  # and someone else's campaign
    rolled_rows = _rollup_rows(app)
    assert rolled_rows["smstrack_rollup_state"] and rolled_rows["smstrack_rollup_clicks"]
    rolled = _report_gets(app, key, ids)
    assert _comparable(rolled) == _comparable(live)
    print(f"{len(live)} report GETs: rollups unchanged; equal before and after catch_up "
          f"({sum(len(v) for v in rolled_rows.values())} rollup rows)")


def test_catch_up_is_idempotent_and_safe_twice_at_once(app, actions):
    from wsgi import db

    key, ids = _imported(app, actions)
    live = _report_gets(app, key, ids, full=False)
    now = dt.datetime.now(dt.timezone.utc)
    moved, errors = [], []

    def run():
        try:
            with app.app_context():
                moved.append(rollups.catch_up(now=now))
        except Exception as err:  # pragma: no cover - shown by the assert
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sum(moved) == len(ids) + 1, (moved, errors)
    with app.app_context():
        assert rollups.catch_up(now=now) == 0  # nothing left to move
        clicks = db.session.execute(select(func.sum(ClickRollup.clicks))).scalar()
        states = db.session.execute(select(func.count()).select_from(RollupState)).scalar()
        rows = db.session.execute(select(func.count()).select_from(Click)).scalar()
    assert (states, clicks) == (len(ids) + 1, rows)  # each click counted once
    print(f"two catch-ups at once moved {moved} cuts; {clicks} of {rows} clicks rolled up once")
    assert _comparable(_report_gets(app, key, ids, full=False)) == _comparable(live)


def test_catch_up_of_some_campaigns_and_rows_after_the_cut(app, actions):
    from wsgi import db

    key, ids = _imported(app, actions)
    with app.app_context():
        assert rollups.catch_up(ids[:2]) == 2
        assert rollups.catch_up([]) == 0
        states = set(db.session.execute(select(RollupState.campaign_id)).scalars())
        campaign = db.session.get(Campaign, ids[0])
        db.session.add(_click(campaign, campaign.links[0], dt.datetime.now(dt.timezone.utc)))
        db.session.commit()
    assert states == set(ids[:2])
    report = {r["id"]: r for r in _report_gets(app, key, ids, full=False)[0][1]["rows"]}
    with app.app_context():
        rollups.catch_up()
    after = {r["id"]: r for r in _report_gets(app, key, ids, full=False)[0][1]["rows"]}
    assert after == report and after[ids[0]]["clicks"] == 11  # the new click, live either way


def test_a_new_send_time_after_a_purge_reads_as_the_catch_up_makes_it(app, runner, actions, world):  # noqa: F811
    """A purged campaign's delays are rebuilt from where the purge stopped;
    until the catch-up does it, a report reads them as it will make them."""
    from wsgi import db

    key, spring = world["key"], world["spring"]
    assert runner.invoke(args=["smstrack", "purge", "--before", world["cutoff"].isoformat()]).exit_code == 0

    def delays():
        return actions.api("GET", f"/campaigns/{spring}/tables/send_to_click?tz=Asia/Kolkata", key).json["rows"]

    before = delays()
    with app.app_context():
        campaign = db.session.get(Campaign, spring)
        campaign.sent_at = sent_at = campaign.sent_at + dt.timedelta(days=2)
        db.session.commit()
    stored = _rollup_rows(app)
    read = delays()
    assert _rollup_rows(app) == stored and read != before
    with app.app_context():
        assert rollups.catch_up([spring]) == 1
        assert db.session.get(RollupState, spring).sent_at == sent_at
    assert _rollup_rows(app) != stored
    assert delays() == read


def _aged_clicks(app, campaign_id: int, n: int) -> None:
    from wsgi import db

    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=5)
        db.session.add_all([_click(campaign, campaign.links[0], at + dt.timedelta(minutes=i)) for i in range(n)])
        db.session.commit()


def _rolled_clicks(app, campaign_id: int) -> int | None:
    from wsgi import db

    with app.app_context():
        return db.session.execute(
            select(func.sum(ClickRollup.clicks)).where(ClickRollup.campaign_id == campaign_id)).scalar()


def test_the_rollups_command_and_an_import_catch_up(app, runner, actions):
    key = actions.api_key()
    first, second = (actions.campaign(key, name=name)["id"] for name in ("First", "Second"))
    for cid in (first, second):
        actions.link(key, cid)
        _aged_clicks(app, cid, 3)
    assert _rolled_clicks(app, first) is None
    # An import starts the catch-up of its campaign (inline: no Redis here).
    imported = actions.client.post(
        f"/smstrack/api/v1/campaigns/{first}/recipients", data="phone\n+14155550100\n", content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"})
    assert imported.status_code == 200, imported.json
    assert (_rolled_clicks(app, first), _rolled_clicks(app, second)) == (3, None)
    result = runner.invoke(args=["smstrack", "rollups"])
    assert result.exit_code == 0, result.output
    assert "Rolling up campaigns" in result.output and "up to date for 2 campaign(s)" in result.output
    assert (_rolled_clicks(app, first), _rolled_clicks(app, second)) == (3, 3)
    assert runner.invoke(args=["smstrack", "rollups", str(second)]).exit_code == 0  # nothing left: no change
    assert _rolled_clicks(app, second) == 3
    missing = runner.invoke(args=["smstrack", "rollups", "999"])
    assert missing.exit_code == 1 and "no campaign 999" in missing.output


def test_a_failed_catch_up_does_not_fail_the_import(app, actions, monkeypatch, caplog):
    key = actions.api_key()
    cid = actions.campaign(key)["id"]

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(rollups, "catch_up", broken)
    imported = actions.client.post(
        f"/smstrack/api/v1/campaigns/{cid}/recipients", data="phone\n+14155550100\n+14155550101\n",
        content_type="text/csv", headers={"Authorization": f"Bearer {key}"})
    assert (imported.status_code, imported.json["imported"]) == (200, 2)
    assert "could not start the catch-up" in caplog.text
