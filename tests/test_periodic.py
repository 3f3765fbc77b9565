"""Without Redis, one web process per machine runs the periodic jobs on a
thread: the rollups catch up after clicks arrive, with no worker and no
report GET building them."""
import time

from sqlalchemy import func, select

from flask_smstrack.jobs.periodic import InProcess
from flask_smstrack.models import Click, RollupState


def _rolled(app, campaign_id: int):
    from wsgi import db

    with app.app_context():
        cut = db.session.execute(
            select(RollupState.rolled_until).where(RollupState.campaign_id == campaign_id)
        ).scalar()
        db.session.commit()
    return cut


def test_the_thread_catches_the_rollups_up_after_clicks(make_app):
    app = make_app(SMSTRACK_JOB_INTERVAL=0.3)
    periodic = app.extensions["smstrack"].periodic
    assert periodic.enabled
    try:
        from conftest import Actions

        actions = Actions(app)
        key = actions.api_key()
        campaign = actions.campaign(key)
        code = actions.link(key, campaign["id"], destination_url="https://shop.example.com/")["code"]
        client = app.test_client()
        for _ in range(5):
            assert client.get(f"/s/{code}", headers={"User-Agent": "Mozilla/5.0 (iPhone)"}).status_code == 302
        assert _rolled(app, campaign["id"]) is None  # the GETs built nothing
        deadline = time.monotonic() + 15
        while _rolled(app, campaign["id"]) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        cut = _rolled(app, campaign["id"])
        print(f"rounds {periodic.counts}, cut {cut}")
        assert cut is not None and periodic.counts["ran"] >= 1
        with app.app_context():
            from wsgi import db

            assert db.session.execute(select(func.count()).select_from(Click)).scalar() == 5
        report = client.get(f"/smstrack/api/v1/campaigns/{campaign['id']}/report",
                            headers={"Authorization": f"Bearer {key}"}).get_json()
        assert report["clicks"] == 5
    finally:
        periodic.stop()


def test_one_process_at_a_time_runs_a_round(make_app):
    app = make_app(SMSTRACK_JOB_INTERVAL=3600)
    first, second = InProcess(app), InProcess(app)
    with first._held() as held:
        assert held
        assert second.round() is None
    assert second.counts == {"ran": 0, "skipped": 1}
    outcome = second.round()
    assert outcome is not None and set(outcome.values()) <= {"ok"} and "rollups" in outcome


def test_off_with_redis_or_a_zero_interval(make_app):
    assert not make_app(SMSTRACK_JOB_INTERVAL=0).extensions["smstrack"].periodic.enabled
    assert not make_app(SMSTRACK_REDIS_URL="redis://127.0.0.1:6379/0").extensions["smstrack"].periodic.enabled
