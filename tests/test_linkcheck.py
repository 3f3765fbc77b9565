"""The link checker against a landing site of our own: a real HTTP server on
127.0.0.1 with good pages, broken pages, redirects, a slow page and an
image, plus a port where nothing listens. Checked through the module, the
``check-links`` command and the dashboard's "Test links" button."""
from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest
from flask import Flask, redirect, request
from werkzeug.serving import WSGIRequestHandler, make_server

from flask_smstrack.manage import get_campaign
from flask_smstrack.sms.linkcheck import check_campaign_links, check_url
from test_dashboard import PASSWORD, csrf_token, login

TIMEOUT = 0.5

GOOD = """<!doctype html><html><head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<script async src="https://go.example.com/smstrack/t.js"></script>
</head><body>Spring sale</body></html>"""
NO_SNIPPET = GOOD.replace("/smstrack/t.js", "/js/analytics.js")
NO_VIEWPORT = GOOD.replace('<meta name="viewport" content="width=device-width, initial-scale=1">', "")
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
#: Pages that write the snippet and the viewport tag in other ways.
VARIANTS = {
    # A loosely written viewport tag; the snippet served under another prefix.
    "loose": '<META NAME="Viewport" CONTENT="initial-scale=1; WIDTH = device-width">'
    '<script src="/track/smstrack/t.js?v=2"></script>',
    # The snippet's address only inside a script's text: not a script tag.
    "in-text": '<meta name="viewport" content="width=device-width">'
    '<script>var x = "<script src=/smstrack/t.js>";</script>',
    # A viewport, but not the device's width.
    "wide": '<meta name="viewport" content="width=1024"><script src="/smstrack/t.js"></script>',
    # A snippet at an address of the site's own choosing.
    "own-path": '<meta name="viewport" content="width=device-width">'
    '<script src="https://go.example.com/tracker/t.js"></script>',
}


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class Site:
    """The customer's landing site, served from a thread."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.release = threading.Event()
        site = Flask("landing")

        @site.before_request
        def _record():
            self.seen.append((request.full_path, request.headers.get("User-Agent", "")))

        def query() -> str:
            return "?" + request.query_string.decode() if request.query_string else ""

        site.add_url_rule("/ok", "ok", lambda: GOOD)
        site.add_url_rule("/no-snippet", "no_snippet", lambda: NO_SNIPPET)
        site.add_url_rule("/no-viewport", "no_viewport", lambda: NO_VIEWPORT)
        site.add_url_rule("/missing", "missing", lambda: ("Not here", 404))
        site.add_url_rule("/image.png", "image", lambda: (PNG, 200, {"Content-Type": "image/png"}))
        site.add_url_rule("/hop/<int:n>", "hop", lambda n: redirect(f"/hop/{n - 1}{query()}") if n else GOOD)
        site.add_url_rule("/loop", "loop", lambda: redirect(f"/loop{query()}"))
        site.add_url_rule("/drops-query", "drops", lambda: redirect("/ok"))
        site.add_url_rule("/variant/<name>", "variant", lambda name: VARIANTS[name])

        @site.route("/slow")
        def slow():
            self.release.wait(5)
            return GOOD

        self.server = make_server("127.0.0.1", 0, site, threaded=True, request_handler=_QuietHandler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def site():
    with Site() as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app(make_app, tmp_path, monkeypatch):
    # The dashboard's check keeps its state in the instance folder: the test's own.
    monkeypatch.setenv("SMSTRACK_INSTANCE_PATH", str(tmp_path / "instance"))
    return make_app(SMSTRACK_LINK_CHECK_TIMEOUT=TIMEOUT, SMSTRACK_LINK_CHECK_PRIVATE_ADDRESSES=True)


# One link per case: code -> (path, verdict, words of the problem the user reads).
CASES = {
    "good": ("/ok", "ok", None),
    "nosnippet": ("/no-snippet", "warning", "page does not load the smstrack snippet: conversions will not be recorded"),
    "noviewport": ("/no-viewport", "warning", "no mobile viewport tag: the page will look zoomed out on phones"),
    "missing": ("/missing", "error", "returned 404"),
    "twohops": ("/hop/2", "ok", None),
    "threehops": ("/hop/3", "warning", "redirects 3 times before landing"),
    "sixhops": ("/hop/6", "error", "too many redirects"),
    "loop": ("/loop", "error", "too many redirects"),
    "dropsid": ("/drops-query", "warning", "the click id (smsclid) is lost on the way"),
    "slow": ("/slow", "error", f"timed out after {TIMEOUT} s"),
    "image": ("/image.png", "warning", "not a web page (image/png)"),
}


@pytest.fixture
def campaign(app, actions, site, closed_port):
    """A campaign with one link per case, a link to a closed port, a second
    link to the good page (same destination: checked once) and a recipient's
    own link (left out: it shares its campaign link's destination)."""
    from flask_smstrack.models import Link
    from flask_smstrack.state import get_state

    key = actions.api_key()
    created = actions.campaign(key)
    for code, (path, _, _) in CASES.items():
        actions.link(key, created["id"], code=code, destination_url=site.url(path), utm={"utm_source": "sms"})
    actions.link(key, created["id"], code="good2", destination_url=site.url("/ok"), utm={"utm_source": "sms"})
    actions.link(key, created["id"], code="refused", destination_url=f"http://127.0.0.1:{closed_port}/")
    actions.link(key, created["id"], code="noclickid", destination_url=site.url("/ok?from=sms"), append_click_id=False)
    with app.app_context():
        db = get_state().db
        parent = db.session.query(Link).filter_by(code="good").one()
        own = Link(campaign_id=created["id"], code="recipient1", destination_url=site.url("/elsewhere"), recipient_id=1)
        if hasattr(Link, "parent_id"):
            own.parent_id = parent.id
        db.session.add(own)
        db.session.commit()
    return created["id"]


def _by_code(checks):
    return {code: check for check in checks for code in check.codes}


def test_check_campaign_links(app, site, campaign):
    with app.app_context():
        checks = check_campaign_links(get_campaign(campaign))
    by_code = _by_code(checks)
    assert "recipient1" not in by_code
    assert not any(path.startswith("/elsewhere") for path, _ in site.seen)
    # Identical destinations are fetched once, in the order of the links.
    assert by_code["good"] is by_code["good2"] and by_code["good"].codes == ["good", "good2"]
    assert len(checks) == len(CASES) + 2
    assert checks[0].codes == ["good", "good2"] and checks[-1].codes == ["noclickid"]

    for code, (path, verdict, problem) in CASES.items():
        check = by_code[code]
        assert check.verdict == verdict, (code, check.problems)
        if problem is None:
            assert check.problems == [], code
        else:
            assert any(problem in p for p in check.problems), (code, check.problems)

    good = by_code["good"]
    assert (good.status, good.redirects, good.has_snippet, good.has_viewport) == (200, 0, True, True)
    assert good.elapsed_ms is not None and good.elapsed_ms < TIMEOUT * 1000
    # The page got what a visitor gets: UTM tags and a click id, from a phone.
    assert re.search(r"^/ok\?utm_source=sms&smsclid=[0-9A-V]{20,64}$", good.url.removeprefix(site.base))
    visits = [(path, ua) for path, ua in site.seen if path.startswith("/ok?utm_source=sms&smsclid=")]
    assert visits and "iPhone" in visits[0][1]
    assert by_code["noclickid"].url == site.url("/ok?from=sms") and by_code["noclickid"].verdict == "ok"

    hops = by_code["twohops"]
    assert (hops.status, hops.redirects, hops.has_snippet) == (200, 2, True)
    assert hops.final_url.startswith(site.url("/hop/0?utm_source=sms&smsclid="))
    assert by_code["sixhops"].redirects == 6 and by_code["sixhops"].has_snippet is None
    assert by_code["loop"].errors == [by_code["loop"].errors[0]] and "loop" in by_code["loop"].errors[0]
    assert by_code["missing"].status == 404 and by_code["missing"].has_snippet is None

    image = by_code["image"]
    assert (image.status, image.content_type, image.has_snippet, image.has_viewport) == (200, "image/png", None, None)
    assert image.notes == ["snippet and mobile viewport not checked: the answer is not HTML"]

    refused = by_code["refused"]
    assert refused.verdict == "error" and refused.status is None
    assert refused.errors == ["could not connect: the connection was refused (nothing answers at that address)"]
    slow = by_code["slow"]
    assert slow.status is None and slow.elapsed_ms < 3000


def test_check_url_reads_snippet_and_viewport_variants(site):
    """Only the script path counts; the viewport may be written loosely."""

    def found(name: str, **kwargs) -> tuple[bool, bool]:
        check = check_url(site.url(f"/variant/{name}"), 2, allow_private=True, **kwargs)
        return check.has_snippet, check.has_viewport

    assert found("loose") == (True, True)
    assert found("in-text") == (False, True)
    assert found("wide") == (True, False)
    assert found("own-path") == (False, True)
    assert found("own-path", snippet_path="/tracker/t.js") == (True, True)

    check = check_url(site.url("/ok"), 2, allow_private=True)
    assert check.verdict == "ok" and check.final_url == site.url("/ok")
    # A snippet served under another URL prefix is found when told where.
    assert check_url(site.url("/no-snippet"), 2, snippet_path="/js/analytics.js", allow_private=True).verdict == "ok"


def test_check_url_reports_failed_tls(site):
    """An https address whose server cannot do TLS is an error, not an exception."""
    check = check_url(site.url("/ok").replace("http://", "https://"), 2, allow_private=True)
    assert check.verdict == "error" and check.status is None
    assert check.errors[0].startswith("the secure (https) connection failed")


def test_check_links_command(runner, site, campaign, closed_port):
    result = runner.invoke(args=["smstrack", "check-links", str(campaign)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "Checking 13 destination(s)" in out
    assert re.search(r"^OK +good, good2  http://127\.0\.0\.1:\d+/ok\?utm_source=sms&smsclid=", out, re.M)
    assert re.search(r"^ERROR +missing  .*\n +404 in \d+ ms\n +- returned 404", out, re.M)
    assert re.search(r"^OK +twohops .*\n +200 in \d+ ms after 2 redirects -> http://127\.0\.0\.1:\d+/hop/0\?", out, re.M)
    assert re.search(r"^WARNING +nosnippet .*\n.*\n +snippet: no, mobile viewport: yes\n +- page does not load the smstrack snippet", out, re.M)
    assert f"- timed out after {TIMEOUT} s" in out
    assert "- could not connect: the connection was refused" in out
    assert "- too many redirects: more than 5" in out
    assert "3 ok, 5 with warnings, 5 with errors (13 destinations, 14 links)." in out
    assert "Error: 5 destinations with errors: fix them before sending." in out


def test_check_links_command_json(runner, site, campaign):
    result = runner.invoke(args=["smstrack", "check-links", str(campaign), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    by_code = {code: row for row in data for code in row["codes"]}
    assert by_code["good"]["verdict"] == "ok" and by_code["good"]["has_snippet"] is True
    missing = by_code["missing"]
    assert (missing["verdict"], missing["status"], missing["errors"]) == ("error", 404, ["returned 404: visitors would see an error page"])
    assert by_code["twohops"]["redirects"] == 2


def test_check_links_command_all_good_and_unknown(app, runner, actions, site):
    key = actions.api_key()
    created = actions.campaign(key)
    empty = runner.invoke(args=["smstrack", "check-links", str(created["id"])])
    assert empty.exit_code == 0 and "has no links to check" in empty.output
    actions.link(key, created["id"], code="fine", destination_url=site.url("/hop/1"))
    result = runner.invoke(args=["smstrack", "check-links", str(created["id"])])
    assert result.exit_code == 0, result.output
    assert "1 ok, 0 with warnings, 0 with errors (1 destination, 1 link)." in result.output
    unknown = runner.invoke(args=["smstrack", "check-links", "999"])
    assert unknown.exit_code == 1 and "no campaign 999" in unknown.output


def test_dashboard_test_links(app, actions, site, campaign):
    client = login(app)
    page = client.get(f"/smstrack/campaigns/{campaign}")
    assert page.status_code == 200
    assert f'action="/smstrack/campaigns/{campaign}/check-links"' in page.text and ">Test links</button>" in page.text

    token = csrf_token(client, f"/smstrack/campaigns/{campaign}")
    response = client.post(f"/smstrack/campaigns/{campaign}/check-links", data={"csrf_token": token})
    # The check runs as a job (here, without Redis, on a thread of the web
    # process): the page follows it, then shows the results.
    assert response.status_code == 303 and response.headers["Location"] == f"/smstrack/campaigns/{campaign}/check-links"
    deadline = time.monotonic() + 30
    while client.get(f"/smstrack/campaigns/{campaign}/jobs/check-links.json").json["active"]:
        assert time.monotonic() < deadline, "the link check did not end"
        time.sleep(0.1)
    text = client.get(f"/smstrack/campaigns/{campaign}/check-links").text
    assert "5 of 13 pages failed: fix them before you send." in text
    rows = re.findall(r'<tr class="st-check-(\w+)">.*?<code>(\w+)</code>', text, re.S)
    assert ("ok", "good") in rows and ("error", "missing") in rows and ("warning", "nosnippet") in rows
    assert '<span class="st-badge st-badge-error">Error</span>' in text
    assert "returned 404: visitors would see an error page" in text
    assert "page does not load the smstrack snippet: conversions will not be recorded" in text
    assert "no mobile viewport tag: the page will look zoomed out on phones" in text
    assert f"timed out after {TIMEOUT} s" in text
    assert "lands on " + site.url("/hop/0?utm_source=sms&amp;smsclid=") in text


def test_dashboard_test_links_needs_token_and_owner(app, actions, site, campaign):
    client = login(app)
    page = client.get(f"/smstrack/campaigns/{campaign}/check-links")
    assert page.status_code == 200 and ">Test links</button>" in page.text
    assert not site.seen  # showing the button checks nothing
    expired = client.post(f"/smstrack/campaigns/{campaign}/check-links", data={"csrf_token": "stale"})
    assert expired.status_code == 400 and "The form expired" in expired.text
    assert not site.seen

    actions.user("other@example.com")
    other = login(app, "other@example.com", PASSWORD)
    app.config["WTF_CSRF_ENABLED"] = False
    assert other.post(f"/smstrack/campaigns/{campaign}/check-links").status_code == 404
    assert other.get(f"/smstrack/campaigns/{campaign}/check-links").status_code == 404
    assert not site.seen
    anonymous = app.test_client().post(f"/smstrack/campaigns/{campaign}/check-links")
    assert anonymous.status_code == 302 and "/smstrack/login" in anonymous.headers["Location"]


def test_pages_on_the_servers_own_network_are_not_fetched(site):
    """The check runs on the server: without SMSTRACK_LINK_CHECK_PRIVATE_ADDRESSES
    it does not fetch loopback, private or link-local addresses, not even
    through a redirect."""
    for url in (site.url("/ok"), "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/"):
        check = check_url(url, 2)
        assert check.verdict == "error"
        assert "private address" in check.errors[0] and "SMSTRACK_LINK_CHECK_PRIVATE_ADDRESSES" in check.errors[0]
    assert not site.seen


# -- the address checked is the address fetched ----------------------------------------

#: A public address, never reached: connections leaving this machine are refused below.
PUBLIC = "93.184.215.14"


@pytest.fixture
def local_connections_only(monkeypatch):
    """Connections to anything but 127.0.0.0/8 are refused here, without
    leaving the machine; the addresses tried are recorded."""
    tried: list[tuple[str, int]] = []
    connect = socket.socket.connect

    def guarded(sock, address):
        tried.append(address[:2])
        if not str(address[0]).startswith("127."):
            raise ConnectionRefusedError(f"test: no traffic to {address[0]}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return tried


def test_dns_rebinding_does_not_reach_the_server(site, monkeypatch, local_connections_only):
    """The system resolver answers a public address to the check, then
    127.0.0.1: the page is fetched from the public address, or not at all."""
    answers = {"rebind.test": [PUBLIC, "127.0.0.1"]}
    lookup = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host not in answers:
            return lookup(host, port, *args, **kwargs)
        address = answers[host][0] if len(answers[host]) == 1 else answers[host].pop(0)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = site.server.server_port
    check = check_url(f"http://rebind.test:{port}/ok", 2)
    assert check.verdict == "error"
    assert check.errors == ["could not connect: the connection was refused (nothing answers at that address)"]
    assert local_connections_only == [(PUBLIC, port)]
    assert not site.seen


def test_each_host_is_resolved_once_and_fetched_from_that_address(site, local_connections_only):
    calls = []

    def resolve(host: str) -> list[str]:
        calls.append(host)
        return [PUBLIC] if len(calls) == 1 else ["127.0.0.1"]

    port = site.server.server_port
    check = check_url(f"http://shop.test:{port}/ok", 2, resolve=resolve)
    assert calls == ["shop.test"] and local_connections_only == [(PUBLIC, port)]
    assert check.verdict == "error" and not site.seen
    # Allowed, a private address is fetched with the host's name in the Host header.
    check = check_url(f"http://shop.test:{port}/hop/1", 2, resolve=lambda host: ["127.0.0.1"], allow_private=True)
    assert check.verdict == "ok" and check.final_url == f"http://shop.test:{port}/hop/0"
    assert [path for path, _ in site.seen] == ["/hop/1?", "/hop/0?"]


@pytest.fixture
def tls_site(tmp_path, monkeypatch):
    """A landing page over https with a certificate for shop.test from a
    test CA the checker trusts; it records the TLS server names and Host
    headers it is sent."""
    import ssl

    import trustme

    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("shop.test").configure_cert(context)
    names, hosts = [], []
    context.sni_callback = lambda _sock, name, _context: names.append(name)
    page = Flask("tls-landing")
    page.add_url_rule("/ok", "ok", lambda: hosts.append(request.host) or GOOD)
    server = make_server("127.0.0.1", 0, page, threaded=True, request_handler=_QuietHandler, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_port, names, hosts
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def test_https_keeps_the_host_name_for_sni_and_the_certificate(tls_site):
    port, names, hosts = tls_site
    local = {"resolve": lambda host: ["127.0.0.1"], "allow_private": True}
    check = check_url(f"https://shop.test:{port}/ok", 2, **local)
    assert check.verdict == "ok", check.problems
    assert names == ["shop.test"] and hosts == [f"shop.test:{port}"]
    # The same address under another name: its certificate does not match.
    other = check_url(f"https://other.test:{port}/ok", 2, **local)
    assert other.verdict == "error" and other.errors[0].startswith("the secure (https) connection failed")
    assert names[-1] == "other.test" and len(hosts) == 1
