"""Background jobs (``flask_smstrack.jobs``): inline without Redis, on the
real Redis's RQ queue with ``SMSTRACK_REDIS_URL`` (a queue and job ids of
each test's own, deleted after it), run by the app's worker; the dashboard's
Send page and link checks as jobs; the queue in the health check and
``flask smstrack status``."""
from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid

import pytest
import redis

from conftest import REDIS_URL, Actions
from e2e.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from test_dashboard import csrf_token, login

SPOOL = "flask_smstrack.tracking.spool:replay_spool"


def forget_queue(name: str) -> None:
    """Delete the keys of the RQ queue ``name`` and its jobs (never FLUSH)."""
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in (f"rq:*:{name}", f"rq:*:{name}:*", f"rq:job:{name}-*", f"rq:*:{name}-*"):
        for key in client.scan_iter(match=pattern, count=500):
            client.delete(key)
    client.close()


@pytest.fixture
def prefix():
    name = f"t-jobs-{uuid.uuid4().hex[:8]}"
    yield name
    forget_queue(name)


@pytest.fixture
def fake():
    with FakeTwilio() as running:
        yield running


@pytest.fixture
def redis_app(make_app, prefix, fake, no_twilio_env):
    return make_app(
        SMSTRACK_REDIS_URL=REDIS_URL, SMSTRACK_REDIS_PREFIX=prefix, SMSTRACK_BASE_URL="https://sms.example.com",
        SMSTRACK_TWILIO_ACCOUNT_SID=ACCOUNT_SID, SMSTRACK_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        SMSTRACK_TWILIO_FROM="+15005550006", SMSTRACK_TWILIO_API_URL=fake.url, SMSTRACK_SEND_RATE=1000,
        SMSTRACK_LINK_CHECK_TIMEOUT=2, SMSTRACK_LINK_CHECK_PRIVATE_ADDRESSES=True,
    )


def run_jobs(app) -> None:
    """Run what waits on the app's queue with its real (forking) worker."""
    from flask_smstrack.jobs.worker import make_worker

    make_worker(app, interval=0).work(burst=True, logging_level="WARNING")


def _campaign(app, destination="https://shop.example.com/spring", people=3) -> int:
    actions = Actions(app)
    key = actions.api_key(admin=True)
    campaign = actions.campaign(key, cost=None, sent=None, message_template="Hi {first_name}: {link}")
    actions.link(key, campaign["id"], destination_url=destination)
    csv = "phone,first_name\n" + "".join(f"+1415555{1000 + i},P{i}\n" for i in range(people))
    imported = actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data=csv, content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert imported.status_code == 200, imported.json
    return campaign["id"]


def test_jobs_run_inline_without_redis(app):
    from flask_smstrack.jobs.queue import Jobs
    from flask_smstrack.state import enqueue

    with app.app_context():
        assert not Jobs(app).queued
        assert tuple(enqueue(SPOOL)) == (0, 0)


def test_fixed_ids_never_pile_up_and_the_worker_runs_them_in_the_app(redis_app, prefix):
    from flask_smstrack.jobs.queue import Jobs, job_key, job_view
    from flask_smstrack.jobs.worker import enqueue_periodic

    with redis_app.app_context():
        jobs = Jobs(redis_app)
        queue = jobs.queue()
        assert queue.name == prefix
        first = jobs.submit(SPOOL, key=job_key(redis_app, "replay-spool"))
        assert first.id == f"{prefix}-replay-spool"
        # The periodic jobs, enqueued by two workers at once: one of each.
        ids = enqueue_periodic(redis_app) + enqueue_periodic(redis_app)
        assert first.id in ids and len(ids) == 2 * len(set(ids))
        assert set(ids) <= {first.id, f"{prefix}-rollups", f"{prefix}-partitions", f"{prefix}-webhooks"}
        assert queue.count == len(set(ids))
        plain = jobs.enqueue(SPOOL)  # no fixed id: a job of its own
        assert plain.id != first.id and queue.count == len(set(ids)) + 1

    run_jobs(redis_app)
    with redis_app.app_context():
        view = job_view(jobs.fetch(first.id))
        assert view.status == "finished" and view.result == [0, 0]
        assert queue.count == 0
        # Finished, its id is free again.
        again = jobs.submit(SPOOL, key=job_key(redis_app, "replay-spool"))
        assert again.id == first.id and job_view(again).status == "queued"


def test_a_periodic_job_missing_from_this_install_is_skipped_with_one_warning(redis_app, prefix, monkeypatch, caplog):
    from flask_smstrack.jobs import periodic, worker

    monkeypatch.setattr(periodic, "PERIODIC", (
        (SPOOL, "replay-spool", None),
        ("flask_smstrack.nowhere:catch_up", "nowhere", None),
        ("flask_smstrack.tracking.spool:no_such_function", "nothing", None),
        (SPOOL, "never-here", frozenset({"oracle"})),
    ))
    monkeypatch.setattr(periodic, "_missing_warned", set())
    with redis_app.app_context():
        assert worker.enqueue_periodic(redis_app) == [f"{prefix}-replay-spool"]
        assert worker.enqueue_periodic(redis_app) == [f"{prefix}-replay-spool"]
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert warnings == [
        "Periodic job nowhere skipped: this version of flask-smstrack has no flask_smstrack.nowhere:catch_up",
        "Periodic job nothing skipped: this version of flask-smstrack has no"
        " flask_smstrack.tracking.spool:no_such_function",
    ]


def test_health_and_status_show_the_queue(redis_app, app):
    from flask_smstrack.jobs.queue import Jobs

    with redis_app.app_context():
        Jobs(redis_app).enqueue(SPOOL)
    checks = redis_app.test_client().get("/smstrack/healthz").json["checks"]
    assert checks["jobs"] == {"status": "ok", "queued": 1, "started": 0, "failed": 0, "scheduled": 0, "workers": 0}
    assert checks["redis"] == {"status": "ok"}
    out = redis_app.test_cli_runner().invoke(args=["smstrack", "status"]).output
    assert re.search(r"jobs +ok, 1 queued, 0 running, 0 failed, 0 scheduled, 0 workers \(\d+ ms\)", out), out
    assert app.test_client().get("/smstrack/healthz").json["checks"]["jobs"] == {"status": "not configured"}


def test_send_from_the_dashboard(redis_app, fake):
    campaign = _campaign(redis_app)
    client = login(redis_app)
    page = client.get(f"/smstrack/campaigns/{campaign}")
    assert f'href="/smstrack/campaigns/{campaign}/send"' in page.text
    send_page = client.get(f"/smstrack/campaigns/{campaign}/send")
    assert send_page.status_code == 200 and ">Send 3 messages</button>" in send_page.text
    status = client.get(f"/smstrack/campaigns/{campaign}/jobs/send.json")
    assert status.json == {"status": "none", "active": False}  # showing the page sent nothing
    assert client.post(f"/smstrack/campaigns/{campaign}/send", data={"csrf_token": "stale"}).status_code == 400

    token = csrf_token(client, f"/smstrack/campaigns/{campaign}/send")
    started = client.post(f"/smstrack/campaigns/{campaign}/send", data={"csrf_token": token})
    assert started.status_code == 303
    # Pressed twice: still one send.
    client.post(f"/smstrack/campaigns/{campaign}/send", data={"csrf_token": token})
    waiting = client.get(f"/smstrack/campaigns/{campaign}/send")
    assert "Waiting for a worker…" in waiting.text and "data-smstrack-job=" in waiting.text
    assert client.get(f"/smstrack/campaigns/{campaign}/jobs/send.json").json["status"] == "queued"
    assert not fake.messages

    run_jobs(redis_app)
    assert sorted(m["to"] for m in fake.messages) == ["+14155551000", "+14155551001", "+14155551002"]
    status = client.get(f"/smstrack/campaigns/{campaign}/jobs/send.json").json
    assert status["status"] == "finished" and status["done"] == status["total"] == 3
    done = client.get(f"/smstrack/campaigns/{campaign}/send").text
    assert "Sent 3 messages (3 segments); 0 failed." in done and "Nothing to send" in done


@pytest.fixture
def local_app(make_app, fake, no_twilio_env, tmp_path, monkeypatch):
    """No Redis: the Send button sends on a thread of the web process, its
    state in the app's own instance folder."""
    monkeypatch.setenv("SMSTRACK_INSTANCE_PATH", str(tmp_path / "instance"))
    return make_app(
        SMSTRACK_BASE_URL="https://sms.example.com", SMSTRACK_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        SMSTRACK_TWILIO_AUTH_TOKEN=AUTH_TOKEN, SMSTRACK_TWILIO_FROM="+15005550006",
        SMSTRACK_TWILIO_API_URL=fake.url, SMSTRACK_SEND_RATE=1000,
    )


def _until_done(client, campaign: int) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.get(f"/smstrack/campaigns/{campaign}/jobs/send.json").json
        if not status["active"]:
            return status
        time.sleep(0.1)
    raise AssertionError(f"the send did not end: {status}")


def test_send_from_the_dashboard_without_redis_runs_in_the_web_process(local_app, fake):
    campaign = _campaign(local_app)
    client = login(local_app)
    page = client.get(f"/smstrack/campaigns/{campaign}/send")
    assert ">Send 3 messages</button>" in page.text and f"flask smstrack send {campaign}" in page.text
    assert client.get(f"/smstrack/campaigns/{campaign}/jobs/send.json").json == {"status": "none", "active": False}
    assert not fake.messages

    token = csrf_token(client, f"/smstrack/campaigns/{campaign}/send")
    assert client.post(f"/smstrack/campaigns/{campaign}/send", data={"csrf_token": token}).status_code == 303
    client.post(f"/smstrack/campaigns/{campaign}/send", data={"csrf_token": token})  # pressed twice
    status = _until_done(client, campaign)
    assert status["status"] == "finished" and status["done"] == status["total"] == 3, status
    assert sorted(m["to"] for m in fake.messages) == ["+14155551000", "+14155551001", "+14155551002"]
    done = client.get(f"/smstrack/campaigns/{campaign}/send").text
    assert "Sent 3 messages (3 segments); 0 failed." in done and "Nothing to send" in done


def test_a_send_stopped_with_its_web_process_goes_on_when_sent_again(local_app, fake, tmp_path):
    import json

    campaign = _campaign(local_app)
    client = login(local_app)
    with local_app.app_context():
        from flask_smstrack.jobs.tasks import send_key

        key = send_key(campaign)
    # The state a killed web process leaves: "started", under a pid that is gone.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "instance" / "smstrack-jobs" / f"{key}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"status": "started", "pid": dead.pid, "meta": {"done": 1, "total": 3}}))

    status = client.get(f"/smstrack/campaigns/{campaign}/jobs/send.json").json
    assert status["status"] == "stopped" and status["active"] is False and "web process" in status["error"]
    page = client.get(f"/smstrack/campaigns/{campaign}/send").text
    assert "The last send did not finish" in page and ">Send 3 messages</button>" in page

    token = csrf_token(client, f"/smstrack/campaigns/{campaign}/send")
    assert client.post(f"/smstrack/campaigns/{campaign}/send", data={"csrf_token": token}).status_code == 303
    status = _until_done(client, campaign)
    assert status["status"] == "finished", status
    assert len(fake.messages) == 3
    assert client.get(f"/smstrack/campaigns/{campaign}/send").text.count("Sent 3 messages") == 1


def test_link_check_runs_as_a_job(redis_app):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    campaign = _campaign(redis_app, destination=f"http://127.0.0.1:{closed}/spring", people=0)
    client = login(redis_app)
    token = csrf_token(client, f"/smstrack/campaigns/{campaign}/check-links")
    started = client.post(f"/smstrack/campaigns/{campaign}/check-links", data={"csrf_token": token})
    assert started.status_code == 303
    page = client.get(f"/smstrack/campaigns/{campaign}/check-links").text
    assert "Testing links…" in page and "Waiting for a worker…" in page
    assert client.get(f"/smstrack/campaigns/{campaign}/jobs/check-links.json").json["active"] is True

    run_jobs(redis_app)
    page = client.get(f"/smstrack/campaigns/{campaign}/check-links").text
    assert "1 of 1 page failed" in page and f"127.0.0.1:{closed}/spring" in page
    status = client.get(f"/smstrack/campaigns/{campaign}/jobs/check-links.json").json
    assert status["status"] == "finished" and status["done"] == status["total"] == 1


NODE_HARNESS = r"""
const fs = require('fs');
const answers = JSON.parse(process.argv[3]);
const bar = {max: 1, value: 0}, text = {textContent: ''}, seen = [];
const box = {getAttribute: () => '/job.json', querySelector: (s) => (s === 'progress' ? bar : text)};
global.document = {querySelector: () => box};
global.window = {fetch: true, location: {reload: () => seen.push([bar.value, bar.max, text.textContent], 'reload')}};
global.fetch = () => { const a = answers.shift(); return Promise.resolve({ok: a !== 500, status: a, json: () => a}); };
global.setTimeout = (f) => setImmediate(() => { seen.push([bar.value, bar.max, text.textContent]); f(); });
eval(fs.readFileSync(process.argv[2], 'utf8'));
setImmediate(function wait() { if (seen[seen.length - 1] === 'reload') console.log(JSON.stringify(seen)); else setImmediate(wait); });
"""


def test_the_page_script_follows_the_job_and_reloads_when_it_ends(tmp_path):
    """``static/smstrack/jobs.js`` in Node with a stub page: the bar and the
    text follow each answer, a failed poll is tried again, and the page
    reloads when the job ends."""
    import json
    import shutil
    from pathlib import Path

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = Path(__file__).parent.parent / "static" / "smstrack" / "jobs.js"
    answers = [
        {"status": "queued", "active": True, "done": None, "total": None},
        {"status": "started", "active": True, "done": 2, "total": 5, "message": "sending"},
        500,
        {"status": "started", "active": True, "done": 4, "total": 5, "message": "waiting 61 s to ask Twilio"},
        {"status": "finished", "active": False, "done": 5, "total": 5},
    ]
    harness = tmp_path / "harness.js"
    harness.write_text(NODE_HARNESS)
    out = subprocess.run([node, str(harness), str(script), json.dumps(answers)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen[-1] == "reload"
    texts = [s[2] for s in seen[:-1]]
    assert "Waiting for a worker…" in texts and "2 of 5 done" in texts
    assert "4 of 5 done (waiting 61 s to ask Twilio)" in texts
    assert [5, 5, "5 of 5 done"] in seen


def test_a_killed_process_left_unreaped_is_not_alive():
    """A work-horse killed with its worker stays a zombie where nothing reaps
    orphans; the search for dead workers' jobs must read it as dead."""
    from flask_smstrack.jobs.queue import process_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 10
        while process_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # killed but not yet waited for: a zombie
        assert not process_alive(child.pid)
        assert child.poll() is not None  # it was still ours to reap
    finally:
        child.kill()
        child.wait()


def test_a_process_of_another_user_hidden_from_proc_is_alive(monkeypatch):
    """Where a signal may not be sent (another user's process) and /proc
    hides it, the process is taken as running: its job is not run twice."""
    import builtins

    from flask_smstrack.jobs import queue

    def refused(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    real_open = builtins.open

    def hidden(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(queue.os, "kill", refused)
    monkeypatch.setattr(builtins, "open", hidden)
    assert queue.process_alive(424242) is True
