"""Per-app state: built once, whatever the first requests do at once."""
import threading

from sqlalchemy import event

from conftest import IPHONE, Actions


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "smstrack-checkpoint" and t.is_alive()]


def test_eight_first_requests_at_once_build_one_writer(make_app):
    """Eight threads hit a fresh app's redirect at the same moment: one click
    writer, one checkpoint thread, one dispose listener, one cookie; every
    click is stored."""
    setup = make_app()
    actions = Actions(setup)
    key = actions.api_key()
    campaign = actions.campaign(key)
    code = actions.link(key, campaign["id"])["code"]

    app = make_app()  # fresh: no request served yet
    state = app.extensions["smstrack"]
    writer = state.click_writer
    before = len(_checkpoint_threads())
    barrier = threading.Barrier(8)
    statuses, cookies, errors = [], [], []

    def visit() -> None:
        try:
            client = app.test_client()
            barrier.wait(timeout=10)
            response = client.get(f"/s/{code}", headers={"User-Agent": IPHONE})
            statuses.append(response.status_code)
            cookies.append(id(state.cookie(app.config)))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=visit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assert statuses == [302] * 8
    assert app.extensions["smstrack"].click_writer is writer
    assert len(set(cookies)) == 1
    with app.app_context():
        engine = state.db.engine
        assert event.contains(engine, "engine_disposed", writer.close)
        if writer.checkpointer is not None:
            assert len(_checkpoint_threads()) - before <= 1
            assert writer.checkpointer._thread is not None
    assert actions.report(key, campaign["id"])["clicks"] == 8
    print(f"8 threads: statuses {statuses.count(302)} x 302, clicks stored 8, writers 1")


def test_each_app_has_its_own_writer(make_app):
    a, b = make_app(), make_app()
    assert a.extensions["smstrack"].click_writer is not b.extensions["smstrack"].click_writer
