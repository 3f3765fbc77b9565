"""In a real browser: a shop on another origin and another stack asks the
tracker's API for a conversion token when it renders its thank-you page;
the page passes it to the snippet, and the conversion is stored verified.

The tracker and the shop run in this process on werkzeug servers bound to
127.0.0.1 (see test_snippet_browser.py); the browser is the shared Chromium.
"""
from __future__ import annotations

import json

from e2e.browser import require_chromium, screenshot_on_failure

require_chromium()

from flask import Flask, render_template_string, request  # noqa: E402

from conftest import ANDROID, Actions  # noqa: E402
from e2e.support import HOST, fetch, free_port, poll  # noqa: E402
from test_snippet_browser import serving  # noqa: E402

_THANKS = """<!doctype html>
<title>Thank you</title>
<script async src="{{ tracker }}/smstrack/t.js"></script>
<script>
  window.smstrack = window.smstrack || function () { (smstrack.q = smstrack.q || []).push(arguments) };
  smstrack('conversion', {event: 'purchase', revenue: '49.90', currency: 'USD',
                          order_id: {{ order_id|tojson }}, token: {{ token|tojson }}});
</script>
<p id="order">Order {{ order_id }} is confirmed.</p>"""


def shop_site(tracker: str, key: str) -> Flask:
    """The landing page, and a thank-you page whose server gets a token
    from the tracker's API for the order it confirms."""
    site = Flask("shop")
    site.add_url_rule("/spring", "spring", lambda: f'<!doctype html><title>Spring</title><script async src="{tracker}/smstrack/t.js"></script>')

    @site.get("/thanks")
    def thanks() -> str:
        order_id = request.args["order_id"]
        body = json.dumps({"event": "purchase", "revenue": "49.90", "currency": "USD", "order_id": order_id})
        reply = fetch(
            f"{tracker}/smstrack/api/v1/conversion-tokens", method="POST", body=body.encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert reply.status == 200, reply.body
        return render_template_string(_THANKS, tracker=tracker, order_id=order_id, token=reply.json()["token"])

    return site


def test_a_thank_you_page_posts_a_signed_conversion(make_app, browser):
    tracker_port, shop_port = free_port(), free_port()
    while shop_port == tracker_port:
        shop_port = free_port()
    tracker, shop = f"http://{HOST}:{tracker_port}", f"http://{HOST}:{shop_port}"
    app = make_app(SMSTRACK_BASE_URL=tracker)
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    actions.link(key, campaign["id"], code="signed-e2e", destination_url=f"{shop}/spring")

    beacons: list[dict] = []
    problems: list[str] = []
    with serving(app, tracker_port), serving(shop_site(tracker, key), shop_port):
        context = browser.new_context(user_agent=ANDROID)
        context.on("request", lambda r: r.url.endswith("/smstrack/collect") and beacons.append(json.loads(r.post_data)))
        page = context.new_page()
        page.on("pageerror", lambda err: problems.append(str(err)))
        with screenshot_on_failure(page, "signed-conversion"):
            page.goto(f"{tracker}/s/signed-e2e")
            poll(lambda: page.evaluate("document.cookie"), lambda c: "_smsclid=" in c)
            page.goto(f"{shop}/thanks?order_id=A-7001")
            report = poll(lambda: actions.report(key, campaign["id"]), lambda r: r["conversions"] == 1)
        context.close()

    assert (report["revenue_verified"], report["revenue_unverified"]) == ({"USD": "49.90"}, {"USD": "0.00"})
    conversion = actions.api("GET", "/conversions", key).json["conversions"][0]
    assert (conversion["trust"], conversion["source"], conversion["order_id"]) == ("verified", "snippet", "A-7001")
    assert [b["type"] for b in beacons] == ["landing", "conversion"]
    assert beacons[1]["token"].count(".") == 2
    assert problems == []
