"""Sales from where they happen, end to end: gunicorn serves the tracked
link, then takes a Stripe event and a Shopify order, each signed as its
provider signs it, that carry the click id; the campaign report read from
the JSON API shows both sales, and a redelivery of each changes nothing."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import shopify_events
import stripe_events
from conftest import IPHONE, PASSWORD_HASH_METHOD, _empty_tables
from e2e.browser import BIN
from e2e.seed import Seed
from e2e.support import ROOT, clean_env, fetch, free_port, gunicorn, report


def test_stripe_and_shopify_sales_reach_the_report(migrated, tmp_path):
    _empty_tables(migrated)
    env = clean_env(
        DATABASE_URL=migrated,
        SECRET_KEY="shop-webhooks-e2e-secret",
        SMSTRACK_SPOOL_DIR=str(tmp_path / "spool"),
        SMSTRACK_PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD,
        SMSTRACK_STRIPE_WEBHOOK_SECRET=stripe_events.SECRET,
        SMSTRACK_SHOPIFY_WEBHOOK_SECRET=shopify_events.SECRET,
    )
    with Seed(env) as seed:
        key = seed.user_with_key("shop@example.com")
        campaign_id, short_url = seed.campaign_with_link("shop@example.com", "https://shop.example.com/spring",
                                                         "SprIng26")
    with gunicorn(BIN / "gunicorn", "wsgi:app", port=free_port(), cwd=ROOT, env=env, log=tmp_path / "gunicorn.log",
                  workers=2, ready_path="/smstrack/login") as server:
        taps = [fetch(server.url + urlsplit(short_url).path, headers={"User-Agent": IPHONE}) for _ in range(2)]
        assert [t.status for t in taps] == [302, 302]
        stripe_click, shopify_click = (parse_qs(urlsplit(t.headers["Location"]).query)["smsclid"][0] for t in taps)

        paid = stripe_events.event(
            "checkout.session.completed",
            stripe_events.checkout_session(4990, client_reference_id=stripe_click),
        )
        ordered = shopify_events.order("120.00", click_id=shopify_click)
        for _ in range(2):  # each provider retries: still one sale each
            reply = fetch(f"{server.url}{stripe_events.PATH}", method="POST", body=paid,
                          headers={"Content-Type": "application/json", "Stripe-Signature": stripe_events.sign(paid)})
            assert (reply.status, reply.json()["attributed"]) == (200, True), reply.body
            reply = fetch(f"{server.url}{shopify_events.PATH}", method="POST", body=ordered,
                          headers=shopify_events.headers("orders/create", ordered))
            assert (reply.status, reply.json()["attributed"]) == (200, True), reply.body
        forged = fetch(f"{server.url}{stripe_events.PATH}", method="POST", body=paid.replace(b"4990", b"9990"),
                       headers={"Content-Type": "application/json", "Stripe-Signature": stripe_events.sign(paid)})
        assert forged.status == 403

        refunded = stripe_events.event("charge.refunded", stripe_events.charge_refunded(4990, 990, [("re_1", 990)]))
        reply = fetch(f"{server.url}{stripe_events.PATH}", method="POST", body=refunded,
                      headers={"Content-Type": "application/json", "Stripe-Signature": stripe_events.sign(refunded)})
        assert (reply.status, reply.json()["amount"]) == (200, "9.90"), reply.body

        seen = report(server.url, key, campaign_id)
        assert (seen["conversions"], seen["unattributed_conversions"]) == (2, 0)
        assert (seen["revenue"], seen["revenue_verified"]) == ({"USD": "169.90"}, {"USD": "169.90"})
        assert (seen["refunded"], seen["net_revenue"], seen["aov"]) == ({"USD": "9.90"}, "160.00", "80.00")
