"""The snippet's privacy modes in a real browser: Global Privacy Control,
Do Not Track with ``data-respect-dnt``, ``data-consent="required"`` before,
after and without consent, and the click id taken out of the address bar.

Each test follows a tracked SMS link to a landing page on another origin and
checks three sides: what the browser sent and kept (requests, cookies,
storage, the address bar), what the tracker's server received, and what is
in the database. The tracker and the landing site run in this process on
werkzeug servers bound to 127.0.0.1 (see test_snippet_browser.py); the
browser is the shared Chromium.
"""
from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

from e2e.browser import Seen, require_chromium, screenshot_on_failure

require_chromium()

from flask import Flask, render_template_string, request  # noqa: E402

from conftest import ANDROID, Actions  # noqa: E402
from e2e.support import HOST, free_port, poll  # noqa: E402
from test_snippet_browser import serving  # noqa: E402

GPC = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
DNT = "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"

# The shop's pages. Its own consent banner keeps the visitor's choice in its
# own cookie ("consent") and tells the snippet on every page, as consent
# managers do; the landing page has a lead form whose conversion is reported
# when the page loads, before any choice.
_PAGE = """<!doctype html>
<title>{{ title }}</title>
<link rel="icon" href="data:,">
<script async src="{{ tracker }}/smstrack/t.js" {{ attributes|safe }}></script>
<script>
  window.smstrack = window.smstrack || function () { (smstrack.q = smstrack.q || []).push(arguments) };
  smstrack('conversion', {{ conversion|tojson }});
{%- if choice %}
  smstrack('consent', {{ 'true' if choice == 'yes' else 'false' }});
{%- endif %}
  function choose(given) {
    document.cookie = 'consent=' + (given ? 'yes' : 'no') + ';path=/';
    smstrack('consent', given);
  }
</script>
<h1>{{ title }}</h1>
<button id="accept" onclick="choose(true)">Accept</button>
<button id="refuse" onclick="choose(false)">Refuse</button>
<a id="buy" href="/thanks">Buy now</a>
"""
LEAD = {"event": "lead", "order_id": "L-1"}
PURCHASE = {"event": "purchase", "revenue": "49.90", "currency": "USD", "order_id": "A-1001"}


def landing_site(tracker: str, attributes: str) -> Flask:
    site = Flask("privacy-landing")

    def page(title: str, conversion: dict) -> str:
        return render_template_string(
            _PAGE, title=title, tracker=tracker, attributes=attributes, conversion=conversion,
            choice=request.cookies.get("consent"),
        )

    site.add_url_rule("/spring", "spring", lambda: page("Spring sale", LEAD))
    site.add_url_rule("/thanks", "thanks", lambda: page("Thank you", PURCHASE))
    return site


class Received:
    """The tracker's WSGI app with a record of the bodies that reached its
    collector, as the server read them."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app
        self.beacons: list[dict] = []

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/smstrack/collect" and environ["REQUEST_METHOD"] == "POST":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            self.beacons.append(json.loads(body))
        return self.wsgi_app(environ, start_response)


@dataclass
class Visit:
    """A visitor's tab on the landing site, reached through the SMS link."""

    app: Flask
    page: object
    context: object
    landing: str  # the landing page's URL as the link's destination has it
    click_id: str  # the click id the redirect put in the landing page's URL
    received: Received
    seen: Seen = field(default_factory=Seen)

    def sent(self) -> list[dict]:
        """The beacons the browser sent to the collector, as far as it tells
        (it may not report one sent while a page loads: the server's record is
        the one that counts)."""
        return self.seen.beacons

    def arrived(self, count: int) -> list[dict]:
        """The beacons the collector got, once ``count`` have, sorted: two
        beacons may reach the threaded server in either order."""
        return sorted(poll(lambda: list(self.received.beacons), lambda b: len(b) >= count), key=json.dumps)

    def snippet_cookie(self) -> str | None:
        cookies = {c["name"]: c["value"] for c in self.context.cookies(self.landing)}
        return cookies.get("_smsclid")

    def storage(self) -> list[int]:
        """How many items the page keeps in localStorage and sessionStorage."""
        return self.page.evaluate("[localStorage.length, sessionStorage.length]")

    def clicks(self) -> list[tuple[str, bool]]:
        from flask_smstrack.models import Click
        from sqlalchemy import select
        from wsgi import db

        with self.app.app_context():
            return [(c.click_id, c.human_confirmed) for c in db.session.scalars(select(Click).order_by(Click.id))]

    def conversions(self) -> list[tuple[str | None, str, str | None]]:
        """(the click id it is attributed to, event, order id) of each stored conversion."""
        from flask_smstrack.models import Click, Conversion
        from sqlalchemy import select
        from wsgi import db

        with self.app.app_context():
            rows = db.session.execute(
                select(Click.click_id, Conversion.event, Conversion.order_id)
                .outerjoin(Click, Click.id == Conversion.click_pk)
                .order_by(Conversion.id)
            )
            return [tuple(row) for row in rows]

    def quiet(self) -> None:
        """Give a beacon the snippet might still send time to show up."""
        self.page.wait_for_timeout(400)


@contextlib.contextmanager
def visit(make_app, browser, name: str, *, attributes: str = "", init_script: str = "",
          destination: str = "/spring", cookies: tuple[dict, ...] = ()) -> Iterator[Visit]:
    """Open the SMS link of a new campaign in a new browser context and land
    on the shop's page carrying the snippet tag with ``attributes``."""
    tracker_port, landing_port = free_port(), free_port()
    while landing_port == tracker_port:
        landing_port = free_port()
    tracker, shop = f"http://{HOST}:{tracker_port}", f"http://{HOST}:{landing_port}"
    app = make_app(SMSTRACK_BASE_URL=tracker)
    received = Received(app.wsgi_app)
    app.wsgi_app = received
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    actions.link(key, campaign["id"], code=name, destination_url=shop + destination)

    with serving(app, tracker_port), serving(landing_site(tracker, attributes), landing_port):
        context = browser.new_context(user_agent=ANDROID)
        if init_script:
            context.add_init_script(init_script)
        if cookies:
            context.add_cookies([{**c, "url": shop} for c in cookies])
        page = context.new_page()
        seen = Seen()
        seen.watch(page)
        context.on("request", lambda r: r.url.endswith("/smstrack/collect") and seen.beacons.append(json.loads(r.post_data)))
        with screenshot_on_failure(page, f"snippet-privacy-{name}"):
            response = page.goto(f"{tracker}/s/{name}")  # returns once the page and the snippet have loaded
            (click_id,) = parse_qs(urlsplit(response.url).query)["smsclid"]
            yield Visit(app, page, context, shop + destination, click_id, received, seen)
        context.close()
    # A beacon outlives the page that sent it (the collector gets it), but the
    # browser reports it aborted when the visitor moves on before the answer.
    aborted = f"request failed: {tracker}/smstrack/collect net::ERR_ABORTED"
    assert [p for p in seen.problems if p != aborted] == []


@pytest.mark.parametrize(
    "name,attributes,init_script",
    [
        ("gpc", "", GPC),
        ("gpc-consent", 'data-consent="required"', GPC),
        ("dnt", "data-respect-dnt", DNT),
    ],
)
def test_a_browser_signal_keeps_the_snippet_silent(make_app, browser, name, attributes, init_script):
    earlier = {"name": "_smsclid", "value": "from-an-earlier-visit"}
    with visit(make_app, browser, name, attributes=attributes, init_script=init_script, cookies=(earlier,)) as v:
        # Neither the page's own consent nor a thank-you page changes that.
        v.page.click("#accept")
        v.page.click("#buy")
        v.page.wait_for_url("**/thanks")
        v.quiet()
        assert v.sent() == [] and v.received.beacons == []
        assert v.snippet_cookie() is None  # the earlier visit's cookie is gone too
        assert v.page.evaluate("document.cookie") == "consent=yes"  # the shop's own
        assert v.storage() == [0, 0]
        # The redirect counted the click; nothing confirmed it or converted.
        assert v.clicks() == [(v.click_id, False)]
        assert v.conversions() == []


def test_do_not_track_counts_only_with_data_respect_dnt(make_app, browser):
    with visit(make_app, browser, "dnt-ignored", init_script=DNT) as v:
        assert v.page.evaluate("navigator.doNotTrack") == "1"
        assert v.arrived(2) == [{"type": "conversion", "click_id": v.click_id, **LEAD}, {"type": "landing", "click_id": v.click_id}]
        assert len(v.received.beacons) == 2
        assert v.snippet_cookie() == v.click_id
        assert poll(v.clicks, lambda c: c[0][1]) == [(v.click_id, True)]


def test_consent_required_nothing_before_consent(make_app, browser):
    with visit(make_app, browser, "before-consent", attributes='data-consent="required"') as v:
        v.page.evaluate("smstrack('conversion', {event: 'signup'})")
        v.quiet()
        assert v.sent() == [] and v.received.beacons == []
        assert v.page.evaluate("document.cookie") == ""
        # Only the redirect's own HttpOnly cookie (the tracker's, on the same host: cookies ignore ports).
        assert [c["name"] for c in v.context.cookies() if not c["httpOnly"]] == []
        assert v.storage() == [0, 0]
        assert v.clicks() == [(v.click_id, False)]
        assert v.conversions() == []


def test_consent_given_sends_the_landing_ping_and_what_waited(make_app, browser):
    with visit(make_app, browser, "consent-given", attributes='data-consent="required"') as v:
        v.page.click("#accept")
        assert v.arrived(2) == [{"type": "conversion", "click_id": v.click_id, **LEAD}, {"type": "landing", "click_id": v.click_id}]
        assert v.snippet_cookie() == v.click_id
        assert v.storage() == [0, 0]
        assert poll(v.clicks, lambda c: c[0][1]) == [(v.click_id, True)]
        assert poll(v.conversions, lambda c: len(c) == 1) == [(v.click_id, "lead", "L-1")]

        # The thank-you page: the shop's banner repeats the choice, the cookie attributes the purchase.
        v.page.click("#buy")
        assert {"type": "conversion", "click_id": v.click_id, **PURCHASE} in v.arrived(3)
        assert poll(v.conversions, lambda c: len(c) == 2) == [(v.click_id, "lead", "L-1"), (v.click_id, "purchase", "A-1001")]
        v.quiet()
        assert len(v.received.beacons) == 3
        assert v.clicks() == [(v.click_id, True)]


def test_consent_withdrawn_removes_the_cookie_and_stops_sending(make_app, browser):
    with visit(make_app, browser, "consent-withdrawn", attributes='data-consent="required"') as v:
        v.page.click("#accept")
        assert [b["type"] for b in v.arrived(2)] == ["conversion", "landing"]
        poll(v.conversions, lambda c: len(c) == 1)
        assert v.snippet_cookie() == v.click_id

        v.page.click("#refuse")
        assert v.snippet_cookie() is None
        assert v.page.evaluate("document.cookie") == "consent=no"
        v.page.evaluate("smstrack('conversion', {event: 'signup'})")
        v.page.click("#buy")
        v.page.wait_for_url("**/thanks")
        v.quiet()
        assert len(v.received.beacons) == 2
        assert v.snippet_cookie() is None
        assert v.storage() == [0, 0]
        assert v.conversions() == [(v.click_id, "lead", "L-1")]


@pytest.mark.parametrize(
    "name,attributes,destination,address",
    [
        ("clean", "", "/spring", "/spring"),
        ("clean-others", "", "/spring?utm_source=sms&q=a%20b+c#offer", "/spring?utm_source=sms&q=a%20b+c#offer"),
        ("clean-consent", 'data-consent="required"', "/spring?lang=de", "/spring?lang=de"),
        ("keep", "data-keep-param", "/spring?lang=de", None),
    ],
)
def test_the_click_id_leaves_the_address_bar(make_app, browser, name, attributes, destination, address):
    with visit(make_app, browser, name, attributes=attributes, destination=destination) as v:
        origin = v.landing[: -len(destination)]
        if address is None:
            assert parse_qs(urlsplit(v.page.url).query)["smsclid"] == [v.click_id]
            assert v.page.evaluate("location.search") == f"?lang=de&smsclid={v.click_id}"
        else:
            assert v.page.url == origin + address
            assert v.page.evaluate("location.href") == origin + address
        # Replaced, not pushed (the new tab's blank page, then the landing page):
        # Back does not lead to the address with the click id.
        assert v.page.evaluate("history.length") == 2
        if not attributes:
            # The snippet read the id before it took it away.
            assert poll(v.clicks, lambda c: c[0][1]) == [(v.click_id, True)]
            assert v.snippet_cookie() == v.click_id
