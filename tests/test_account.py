"""Logging in and out of the dashboard as an attacker would try it: where
``next`` may lead, what an unknown email costs, the session cookie's
attributes, sessions that end on logout and password change, the password
commands, and the API keys page."""
from __future__ import annotations

import re

import pytest
from werkzeug import security

from conftest import PASSWORD_HASH_METHOD
from test_dashboard import PASSWORD, csrf_token, login

_KEY = re.compile(r'<code id="st-new-key" class="st-copy-text">(smst_[^<]+)</code>')


def _post_login(client, email="owner@example.com", password=PASSWORD, query=""):
    token = csrf_token(client, "/smstrack/login")
    return client.post(f"/smstrack/login{query}", data={"email": email, "password": password, "csrf_token": token})


# -- where a login leads ------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "?next=//evil.com",
        "?next=/\\evil.com",
        "?next=/%09/evil.com",
        "?next=/%0a/evil.com",
        "?next=%2F%2Fevil.com",
        "?next=%252F%252Fevil.com",
        "?next=/%252F%252Fevil.com/..",
        "?next=%5C%5Cevil.com",
        "?next=https://evil.com",
        "?next=https:/evil.com",
        "?next=//evil.com/%2F..",
        "?next=javascript:alert(1)",
        "?next=/%5Cevil.com",
        "?next=%20//evil.com",
        "?next=",
    ],
)
def test_next_never_leaves_the_site(app, actions, query):
    actions.user()
    response = _post_login(app.test_client(), query=query)
    assert response.status_code == 302
    assert response.headers["Location"] == "/smstrack/"


def test_next_keeps_a_path_on_the_site(app, actions):
    actions.user()
    response = _post_login(app.test_client(), query="?next=%2Fsmstrack%2Fcampaigns%2Fnew%3Ftz%3DEurope%2FParis")
    assert response.headers["Location"] == "/smstrack/campaigns/new?tz=Europe/Paris"
    # The next of a page that asked for a login comes back to it.
    client = app.test_client()
    asked = client.get("/smstrack/campaigns/new")
    assert asked.status_code == 302
    token = csrf_token(client, asked.headers["Location"])
    response = client.post(asked.headers["Location"], data={"email": "owner@example.com", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/smstrack/campaigns/new"


# -- what an unknown email costs ----------------------------------------------


def test_unknown_email_costs_a_hash_check(app, actions, monkeypatch):
    """Without it an unknown email answered in 0.015 s and a known one in 0.32 s."""
    actions.user()
    checked = []
    real = security.check_password_hash

    def spy(pwhash, password):
        checked.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(security, "check_password_hash", spy)
    client = app.test_client()
    for email in ("owner@example.com", "nobody@example.com"):
        checked.clear()
        response = _post_login(client, email=email, password="wrong password")
        assert response.status_code == 400
        assert "Wrong email or password." in response.text
        assert len(checked) == 1, email
        # Both made with the configured method, so both take as long.
        assert checked[0].startswith(PASSWORD_HASH_METHOD + "$"), email


# -- the session cookie ---------------------------------------------------------


def test_session_cookie_attributes(app, actions):
    actions.user()
    response = _post_login(app.test_client())
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    client = app.test_client()
    token = csrf_token(client, "https://localhost/smstrack/login")
    response = client.post(
        "https://localhost/smstrack/login",
        data={"email": "owner@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# -- sessions end ---------------------------------------------------------------


def _session_cookie(client) -> str:
    return client.get_cookie("session").value


def _with_cookie(app, value):
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def test_logout_ends_copies_of_the_session(app, actions):
    actions.user()
    client = login(app)
    stolen = _session_cookie(client)
    assert _with_cookie(app, stolen).get("/smstrack/").status_code == 200
    token = csrf_token(client, "/smstrack/")
    assert client.post("/smstrack/logout", data={"csrf_token": token}).status_code == 302
    response = _with_cookie(app, stolen).get("/smstrack/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/smstrack/login")
    # Logging in again works, with a session of its own.
    assert login(app).get("/smstrack/").status_code == 200


def test_change_password_ends_other_sessions(app, actions):
    actions.user()
    client, other = login(app), login(app)
    token = csrf_token(client, "/smstrack/account/password")
    wrong = client.post("/smstrack/account/password", data={
        "current": "not my password", "new": "a new password", "confirm": "a new password", "csrf_token": token})
    assert wrong.status_code == 400 and "not your current password" in wrong.text
    differ = client.post("/smstrack/account/password", data={
        "current": PASSWORD, "new": "a new password", "confirm": "another one", "csrf_token": token})
    assert differ.status_code == 400 and "differ" in differ.text
    short = client.post("/smstrack/account/password", data={
        "current": PASSWORD, "new": "short", "confirm": "short", "csrf_token": token})
    assert short.status_code == 400
    assert other.get("/smstrack/").status_code == 200  # nothing changed yet

    response = client.post("/smstrack/account/password", data={
        "current": PASSWORD, "new": "a new password", "confirm": "a new password", "csrf_token": token})
    assert response.status_code == 302
    assert client.get("/smstrack/").status_code == 200  # this session goes on
    assert other.get("/smstrack/").status_code == 302  # the others end
    assert _post_login(app.test_client()).status_code == 400
    login(app, password="a new password")


def test_password_page_needs_login(app):
    response = app.test_client().get("/smstrack/account/password")
    assert response.status_code == 302 and response.headers["Location"].startswith("/smstrack/login")


# -- commands -----------------------------------------------------------------


def _run(runner, *args, **kw):
    return runner.invoke(args=["smstrack", *args], **kw)


def test_set_password_command(app, actions, runner):
    actions.user(admin=True)
    client = login(app)
    result = _run(runner, "set-password", "Owner@Example.com", input="a lost password\na lost password\n")
    assert result.exit_code == 0, result.output
    assert client.get("/smstrack/").status_code == 302  # its sessions ended
    login(app, password="a lost password")
    result = _run(runner, "set-password", "owner@example.com", "--password-stdin", input="from stdin pass\n")
    assert result.exit_code == 0, result.output
    login(app, password="from stdin pass")

    mismatch = _run(runner, "set-password", "owner@example.com", input="first one!\nsecond one\nfirst one!\nfirst one!\n")
    assert mismatch.exit_code == 0 and "do not match" in mismatch.output
    login(app, password="first one!")
    assert "at least 8" in _run(runner, "set-password", "owner@example.com", "--password-stdin", input="short\n").output
    missing = _run(runner, "set-password", "nobody@example.com", "--password-stdin", input="whatever pass\n")
    assert missing.exit_code == 1 and "create-user" in missing.output


def test_quickstart_never_locks_its_admin_out(app, runner):
    first = _run(runner, "quickstart")
    password = re.search(r"password: (\S+)", first.output).group(1)
    again = _run(runner, "quickstart")
    assert again.exit_code == 0, again.output
    assert "password:" not in again.output and "set-password" in again.output
    login(app, email="admin@example.com", password=password)
    # A lost admin password is set again from the command line.
    assert _run(runner, "set-password", "admin@example.com", "--password-stdin", input="found again\n").exit_code == 0
    login(app, email="admin@example.com", password="found again")


# -- API keys page --------------------------------------------------------------


def test_api_keys_page(app, actions):
    actions.user()
    actions.user("other@example.com")
    theirs = actions.api_key("other@example.com")
    client = login(app)
    page = client.get("/smstrack/account/api-keys")
    assert page.status_code == 200 and "No keys yet." in page.text
    token = csrf_token(client, "/smstrack/account/api-keys")
    created = client.post("/smstrack/account/api-keys", data={"name": "shop server", "csrf_token": token})
    assert created.status_code == 201
    key = _KEY.search(created.text).group(1)
    headers = {"Authorization": f"Bearer {key}"}
    assert app.test_client().get("/smstrack/api/v1/campaigns", headers=headers).status_code == 200
    listed = client.get("/smstrack/account/api-keys").text
    assert key not in listed and f"{key[:11]}…" in listed and "shop server" in listed
    assert theirs[:11] not in listed
    session = app.session_interface.get_signing_serializer(app).loads(_session_cookie(client))
    assert key not in repr(session)  # never flashed into the (readable) session cookie

    # Someone else's key cannot be revoked from here, nor a key that does not exist.
    from flask_smstrack.models import ApiKey

    with app.app_context():
        from flask_smstrack.state import get_state

        ids = {row.prefix: row.id for row in get_state().db.session.query(ApiKey)}
    for key_id in (ids[theirs[:11]], 999, 2**40):
        assert client.post(f"/smstrack/account/api-keys/{key_id}/revoke", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/smstrack/account/api-keys/{ids[key[:11]]}/revoke").status_code == 400  # no token
    revoked = client.post(f"/smstrack/account/api-keys/{ids[key[:11]]}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302
    assert app.test_client().get("/smstrack/api/v1/campaigns", headers=headers).status_code == 401
    assert app.test_client().get("/smstrack/api/v1/campaigns", headers={"Authorization": f"Bearer {theirs}"}).status_code == 200
    assert "revoked" in client.get("/smstrack/account/api-keys").text
    assert app.test_client().get("/smstrack/account/api-keys").status_code == 302


def test_forms_render_with_csrf_turned_off(make_app, actions):
    """An app that turns Flask-WTF's CSRF off still gets its login and keys pages."""
    app = make_app(WTF_CSRF_ENABLED=False)
    actions.user()
    client = app.test_client()
    assert client.get("/smstrack/login").status_code == 200
    response = client.post("/smstrack/login", data={"email": "owner@example.com", "password": "wrong password"})
    assert response.status_code == 400 and "Wrong email or password." in response.text
    assert client.post("/smstrack/login", data={"email": "owner@example.com", "password": PASSWORD}).status_code == 302
    for url in ("/smstrack/account/api-keys", "/smstrack/account/password"):
        assert client.get(url).status_code == 200, url
    assert client.post("/smstrack/account/api-keys", data={"name": "n"}).status_code == 201
