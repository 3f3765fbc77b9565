import json

from conftest import IPHONE
from flask_smstrack.auth import principal_from_key


def _run(runner, *args):
    return runner.invoke(args=["smstrack", *args])


def test_init_db_is_idempotent(runner):
    result = _run(runner, "init-db")
    assert result.exit_code == 0
    assert "up to date" in result.output


def test_users_keys_campaigns_links_report(app, runner):
    assert _run(runner, "create-user", "Owner@Example.com", "--password", "s3cret-pass", "--admin").exit_code == 0
    duplicate = _run(runner, "create-user", "owner@example.com", "--password", "s3cret-pass")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    short = _run(runner, "create-user", "x@example.com", "--password", "short")
    assert short.exit_code == 1 and "at least 8" in short.output

    key_result = _run(runner, "create-api-key", "owner@example.com")
    assert key_result.exit_code == 0
    key = key_result.stdout.strip().splitlines()[0]
    assert key.startswith("smst_")
    with app.test_request_context():
        principal = principal_from_key(key)
        assert principal is not None and principal.is_admin
    assert _run(runner, "create-api-key", "nobody@example.com").exit_code == 1

    campaign = _run(runner, "create-campaign", "--name", "Spring", "--currency", "USD", "--cost", "12.50", "--sent", "500", "--owner", "owner@example.com")
    assert campaign.exit_code == 0, campaign.output
    assert campaign.output.startswith("Campaign 1 created")
    bad = _run(runner, "create-campaign", "--name", "Bad", "--currency", "XXQ")
    assert bad.exit_code == 1 and "currency" in bad.output

    link = _run(runner, "create-link", "1", "https://example.com/spring", "--code", "spring")
    assert link.exit_code == 0, link.output
    assert link.output.splitlines()[-1].endswith("/s/spring")
    taken = _run(runner, "create-link", "1", "https://example.com/other", "--code", "spring")
    assert taken.exit_code == 1 and "already in use" in taken.output
    assert _run(runner, "create-link", "99", "https://example.com").exit_code == 1
    assert "destination_url" in _run(runner, "create-link", "1", "ftp://example.com").output

    app.test_client().get("/s/spring", headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"})
    report = _run(runner, "report", "1")
    assert report.exit_code == 0
    data = json.loads(report.output)
    assert (data["clicks"], data["sent"], data["cost"], data["ctr"]) == (1, 500, "12.50", 0.002)
    assert _run(runner, "report", "42").exit_code == 1


def test_quickstart_starts_empty_and_says_what_to_do_first(app, runner):
    """A new install has no made-up campaign (its numbers would be a -100%
    ROI); the command says how to create one or load the demo."""
    result = _run(runner, "quickstart")
    assert result.exit_code == 0, result.output
    assert "password:" in result.output
    assert "No campaign yet" in result.output
    assert "http://127.0.0.1:8000/smstrack/campaigns/new" in result.output
    assert "make run DEMO=1" in result.output
    with app.app_context():
        from flask_smstrack.models import Campaign
        from flask_smstrack.state import get_state

        assert get_state().db.session.query(Campaign).count() == 0
    again = _run(runner, "quickstart")
    assert "password:" not in again.output


def test_readme_quickstart_uses_the_new_campaign(app, runner):
    """As the README has it after ``make run``: the commands that follow act
    on the campaign just created."""
    assert _run(runner, "quickstart").exit_code == 0
    created = _run(runner, "create-campaign", "--name", "Spring sale", "--currency", "USD", "--sent", "2000")
    assert created.exit_code == 0, created.output
    assert created.output == "Campaign 1 created: Spring sale\n"
    quiet = _run(runner, "create-campaign", "--name", "Summer sale", "--currency", "USD", "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == "2\n"
    campaign_id = quiet.output.strip()
    link = _run(runner, "create-link", campaign_id, "https://shop.example.com/summer", "--code", "summer")
    assert link.exit_code == 0, link.output
    assert link.output == "Link summer -> https://shop.example.com/summer\nhttp://127.0.0.1:8000/s/summer\n"
    assert app.test_client().get("/s/summer", headers={"User-Agent": IPHONE}).status_code == 302
    report = json.loads(_run(runner, "report", campaign_id).output)
    assert (report["campaign_id"], report["clicks"]) == (2, 1)
    assert json.loads(_run(runner, "report", "1").output)["clicks"] == 0


def test_create_link_prints_the_full_short_url(make_app):
    runner = make_app(SMSTRACK_BASE_URL="https://go.example.com/").test_cli_runner()
    assert _run(runner, "create-campaign", "--name", "Spring sale", "--currency", "USD").exit_code == 0
    link = _run(runner, "create-link", "1", "https://shop.example.com/spring", "--code", "spring")
    assert link.exit_code == 0, link.output
    assert link.output.splitlines()[-1] == "https://go.example.com/s/spring"


def test_quickstart_first_steps_are_on_its_base_url(app, runner):
    result = _run(runner, "quickstart", "--base-url", "https://go.example.com/")
    assert result.exit_code == 0, result.output
    assert "https://go.example.com/smstrack/campaigns/new" in result.output
    assert "https://go.example.com/smstrack/login" in result.output


def test_rollup_command(app, runner):
    assert _run(runner, "create-campaign", "--name", "A", "--currency", "USD").exit_code == 0
    result = _run(runner, "rollup")
    assert result.exit_code == 0, result.output
    assert "up to date for 1 campaign" in result.output
    missing = _run(runner, "rollup", "99")
    assert missing.exit_code == 1 and "no campaign 99" in missing.output


def test_quickstart_with_demo(app, runner):
    result = _run(runner, "quickstart", "--demo")
    assert result.exit_code == 0, result.output
    assert "Demo: Spring sale" in result.output


def test_list_and_revoke_api_keys(app, runner):
    assert _run(runner, "create-user", "keys@example.com", "--password", "s3cret-pass").exit_code == 0
    key = _run(runner, "create-api-key", "keys@example.com", "--name", "shop").stdout.strip().splitlines()[0]
    listed = _run(runner, "list-api-keys", "keys@example.com")
    assert listed.exit_code == 0 and f"{key[:11]}...  active, never used" in listed.output and "shop" in listed.output
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/smstrack/api/v1/campaigns", headers=headers).status_code == 200
    revoked = _run(runner, "revoke-api-key", key[:11])
    assert revoked.exit_code == 0 and "Revoked 1 key" in revoked.output
    assert client.get("/smstrack/api/v1/campaigns", headers=headers).status_code == 401
    assert "revoked" in _run(runner, "list-api-keys", "keys@example.com").output
    assert _run(runner, "revoke-api-key", key[:11]).exit_code == 1
    assert _run(runner, "revoke-api-key", "abc").exit_code == 1
