"""In a real browser, the tag from the install page of an app with its own
click parameter, snippet cookie name and cookie lifetime: the SMS link's
redirect, then the landing page on another origin, whose snippet reads the
click id from that parameter and keeps it in that cookie for that long.

The app and the landing site run in this process on werkzeug servers bound
to 127.0.0.1; the browser is Debian's headless Chromium.
"""
from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

from e2e.browser import require_chromium, screenshot_on_failure

require_chromium()

from flask import Flask  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from conftest import ANDROID, Actions  # noqa: E402
from e2e.support import HOST, free_port, poll  # noqa: E402
from test_snippet import CUSTOM, install_page  # noqa: E402

_TAG_BLOCK = re.compile(r'<code id="snippet-tag">(.*?)</code>', re.S)


@contextlib.contextmanager
def serving(app, port: int) -> Iterator[str]:
    """``app`` on http://127.0.0.1:<port> in a thread, stopped afterwards."""
    server = make_server(HOST, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def landing_site(head: str) -> Flask:
    """A shop's landing page with ``head`` pasted into it."""
    site = Flask("landing")
    site.add_url_rule("/spring", "spring", lambda: f"<!doctype html><title>Spring sale</title>{head}<h1>Spring sale</h1>")
    return site


def test_custom_param_cookie_and_days_in_a_real_browser(make_app, browser):
    tracker_port, landing_port = free_port(), free_port()
    while landing_port == tracker_port:
        landing_port = free_port()
    tracker_url = f"http://{HOST}:{tracker_port}"
    app = make_app(SMSTRACK_BASE_URL=tracker_url, **CUSTOM)
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    landing_url = f"http://{HOST}:{landing_port}/spring"
    actions.link(key, campaign["id"], code="custom-e2e", destination_url=landing_url)

    # What the owner copies from the install page, pasted on the landing page.
    (block,) = _TAG_BLOCK.findall(install_page(app, campaign["id"]))
    assert 'data-param="ref" data-cookie="sms_ref" data-cookie-days="7"' in block

    beacons: list[dict] = []
    problems: list[str] = []
    with serving(app, tracker_port), serving(landing_site(block), landing_port):
        context = browser.new_context(user_agent=ANDROID)
        context.on("request", lambda r: r.url.endswith("/smstrack/collect") and beacons.append(json.loads(r.post_data)))
        page = context.new_page()
        page.on("pageerror", lambda err: problems.append(str(err)))
        with screenshot_on_failure(page, "snippet-custom-config"):
            loaded_at = time.time()
            landed = urlsplit(page.goto(f"{tracker_url}/s/custom-e2e").url)
            assert f"{landed.scheme}://{landed.netloc}{landed.path}" == landing_url
            # The redirect put the click id in the custom parameter...
            (click_id,) = parse_qs(landed.query)["ref"]
            assert "smsclid" not in landed.query
            # ... which the snippet took out of the address bar once it had read it.
            assert page.url == landing_url

            # ... the snippet read it from there and kept it in its own cookie, for 7 days.
            poll(lambda: page.evaluate("document.cookie"), lambda c: "sms_ref=" in c)
            cookies = {c["name"]: c for c in context.cookies(landing_url) if not c["httpOnly"]}
            assert list(cookies) == ["sms_ref"]
            assert cookies["sms_ref"]["value"] == click_id
            assert abs(cookies["sms_ref"]["expires"] - (loaded_at + 7 * 86400)) < 120

            # ... and told the tracker, which counts the click as human-confirmed.
            numbers = poll(lambda: actions.report(key, campaign["id"]), lambda r: r["human_confirmed"] == 1)
            assert numbers["human_confirmed"] == 1, numbers
        context.close()

    assert beacons == [{"type": "landing", "click_id": click_id}]
    assert problems == []

