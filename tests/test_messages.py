import csv
import io
from collections import Counter

from sqlalchemy import select, update

from conftest import ANDROID, DESKTOP, IPHONE, click_id_of
from flask_smstrack.sms.messages import assign_variants, placeholders, render
from flask_smstrack.models import Click, Link, Recipient

BASE = "https://sms.example.com"
PEOPLE = "phone,first_name,city\n" + "".join(f"+1415555{100 + i:04d},P{i},City{i % 3}\n" for i in range(12))


def test_render_fills_links_and_attributes():
    text = render("Hi {first_name}! {link} or {link2} {missing} {not a placeholder} {{x}}", {"first_name": "Ana"}, ["u1", "u2"])
    assert text == "Hi Ana! u1 or u2  {not a placeholder} {x}"
    assert placeholders("{link} {first_name} {link} {link2}") == ["link", "first_name", "link2"]
    # A link the campaign does not have stays visible rather than vanishing.
    assert render("{link3}", {}, ["u1"]) == "{link3}"


def test_assignment_is_deterministic_and_balanced():
    keys = [f"7:+1415555{i:04d}" for i in range(300)]
    picks = assign_variants(keys, [2, 1])
    assert Counter(picks) == {0: 200, 1: 100}
    assert assign_variants(keys, [2, 1]) == picks
    # Not the import order: the two groups interleave, but not in turns.
    assert picks[:12] != [0, 0, 1] * 4
    # Added later, new keys keep the whole in balance.
    more = Counter(assign_variants([f"7:+1415666{i:04d}" for i in range(31)], [1, 1, 1], counts=[10, 0, 0]))
    assert sorted((more[0] + 10, more[1], more[2])) == [13, 14, 14]


def _setup(sms, *, variants=(("A", "Hi {first_name}, 20% off today: {link}"), ("B", "{first_name}! Sale ends tonight {link}")),
           template=None, price="0.0079"):
    key = sms.api_key()
    fields = {"cost": None, "sent": None, "cost_per_segment": price}
    if template:
        fields["message_template"] = template
    campaign = sms.campaign(key, **fields)
    link = sms.link(key, campaign["id"])
    for name, text in variants:
        made = sms.api("POST", f"/campaigns/{campaign['id']}/variants", key, json={"name": name, "message_template": text})
        assert made.status_code == 201, made.json
    imported = sms.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data=PEOPLE, content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert imported.json["imported"] == 12
    return key, campaign, link


def _messages(sms, key, campaign_id):
    """Export the messages, as for another SMS platform: they count as sent."""
    response = sms.api("POST", f"/campaigns/{campaign_id}/messages/export", key)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_prepare_renders_each_recipient_with_own_links(sms, sms_app):
    key, campaign, link = _setup(sms)
    prepared = sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    assert prepared.status_code == 200, prepared.json
    body = prepared.json
    assert (body["prepared"], body["assigned"], body["links_created"]) == (12, 12, 12)
    assert body["per_variant"] == {"A": 6, "B": 6}
    assert (body["ready"], body["segments"], body["cost"]) == (12, 12, "0.0948")
    report = sms.report(key, campaign["id"])
    assert (report["sent"], report["cost"]) == (None, None)  # ready is not sent
    rows = _messages(sms, key, campaign["id"])
    assert [r["phone"] for r in rows] == [f"+1415555{100 + i:04d}" for i in range(12)]
    codes = set()
    for i, row in enumerate(rows):
        url = row["message"].split()[-1]
        assert url.startswith(f"{BASE}/s/")
        codes.add(url.rsplit("/", 1)[1])
        expected = {"A": f"Hi P{i}, 20% off today: {url}", "B": f"P{i}! Sale ends tonight {url}"}[row["variant"]]
        assert row["message"] == expected
    assert len(codes) == 12 and link["code"] not in codes
    # Preparing again changes nothing: same variants, same codes.
    again = sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key).json
    assert (again["assigned"], again["links_created"]) == (0, 0)
    assert _messages(sms, key, campaign["id"]) == rows
    # Every code redirects to the campaign link's destination.
    response = sms.click(codes.pop())
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://shop.example.com/spring?src=sms&smsclid=")


def test_per_recipient_clicks_count_people_and_forwards_apart(sms, sms_app):
    key, campaign, link = _setup(sms)
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    rows = _messages(sms, key, campaign["id"])
    code = {r["phone"]: r["message"].rsplit("/", 1)[1] for r in rows}
    ana, ben = code["+14155550100"], code["+14155550101"]
    first = sms.click(ana)  # Ana on her phone
    sms.click(ana)  # again, same phone and cookie
    sms.click(ana, client=sms_app.test_client())  # same phone, cookie cleared
    forwarded = sms.click(ana, ua=DESKTOP, ip="90.12.1.1", client=sms_app.test_client())  # a friend's laptop
    sms.click(ben, ua=ANDROID, client=sms_app.test_client())
    with sms_app.app_context():
        from wsgi import db

        clicks = db.session.execute(select(Click).order_by(Click.id)).scalars().all()
        assert [(c.kind, c.is_first) for c in clicks] == [
            ("human", True), ("human", False), ("human", False), ("forward", False), ("human", True)
        ]
        assert {c.link_id for c in clicks} == {link["id"]}
        assert all(c.recipient_id is not None and c.variant_id is not None for c in clicks)
    report = sms.report(key, campaign["id"])
    assert (report["clicks"], report["unique_clicks"], report["forwards"], report["sent"]) == (4, 2, 1, 12)
    assert report["ctr"] == round(2 / 12, 6)
    # A conversion from the forward is revenue of the campaign.
    body = {"click_id": click_id_of(forwarded), "event": "purchase", "revenue": "30", "currency": "USD", "order_id": "f-1"}
    assert sms.api("POST", "/conversions", key, json=body).status_code == 201
    assert sms.report(key, campaign["id"])["revenue"] == {"USD": "30.00"}
    assert click_id_of(first)


def test_delivered_is_the_ctr_denominator_once_receipts_exist(sms, sms_app):
    key, campaign, _ = _setup(sms)
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    rows = _messages(sms, key, campaign["id"])
    sms.click(rows[0]["message"].rsplit("/", 1)[1])
    assert sms.report(key, campaign["id"])["ctr"] == round(1 / 12, 6)
    with sms_app.app_context():
        from wsgi import db

        r = Recipient.__table__.c
        for i, (status, sid) in enumerate([("delivered", "SM1"), ("delivered", "SM2"), ("delivered", "SM3"),
                                            ("undelivered", "SM4"), ("failed", None), ("sent", "SM6")]):
            db.session.execute(
                update(Recipient).where(r.phone == f"+1415555{100 + i:04d}").values(status=status, message_sid=sid)
            )
        db.session.commit()
    report = sms.report(key, campaign["id"])
    # 12 rendered, one refused before sending: 11 sent; 3 delivered, 1 not,
    # 7 not known yet: CTR counts the 10 that may have arrived.
    assert (report["sent"], report["delivered"], report["undelivered"], report["segments"]) == (11, 3, 1, 11)
    assert report["ctr"] == round(1 / 10, 6)
    assert report["cost"] == "0.0869"


def test_link_that_adds_a_segment_is_warned(sms):
    text = "A" * 140 + " {link}"
    key, campaign, _ = _setup(sms, variants=(), template=text)
    body = sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key).json
    assert (body["link_adds_segment"], body["segments"]) == (12, 24)
    preview = sms.api("POST", "/messages/preview", key, json={"text": text}).json
    assert (preview["segments"], preview["segments_without_links"]) == (2, 1)
    assert preview["warning"].startswith("The short link takes this message from 1 to 2 segments")
    assert preview["rendered"].startswith("A" * 140 + f" {BASE}/s/")
    plain = sms.api("POST", "/messages/preview", key, json={"text": "Hello"}).json
    assert "warning" not in plain and plain["segments"] == 1


def test_prepare_refuses_what_it_cannot_render(sms, make_app):
    key, campaign, _ = _setup(sms, variants=(("A", "Two links: {link} {link2}"),))
    response = sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    assert response.status_code == 409
    assert response.json["errors"]["message_template"] == [
        "variant A uses {link2} but the campaign has 1 link: add a link first"
    ]
    with sms.app.app_context():
        from wsgi import db

        assert db.session.execute(select(Recipient.status)).scalars().all() == ["pending"] * 12
        assert db.session.execute(select(Link).where(Link.recipient_id.is_not(None))).first() is None


def test_variants_api_rules(sms):
    key, campaign, _ = _setup(sms)
    path = f"/campaigns/{campaign['id']}/variants"
    assert [v["name"] for v in sms.api("GET", path, key).json["variants"]] == ["A", "B"]
    taken = sms.api("POST", path, key, json={"name": "A", "message_template": "x {link}"})
    assert taken.status_code == 409 and "name" in taken.json["errors"]
    bad = sms.api("POST", path, key, json={"name": "C", "message_template": "", "weight": 0})
    assert bad.status_code == 400 and set(bad.json["errors"]) == {"message_template", "weight"}
    made = sms.api("POST", path, key, json={"name": "C", "message_template": "C {link}", "weight": 2}).json
    assert sms.api("DELETE", f"{path}/{made['id']}", key).status_code == 204
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    with sms.app.app_context():
        from wsgi import db

        db.session.execute(update(Recipient).where(Recipient.id == 1).values(status="sent", message_sid="SM1"))
        db.session.commit()
    late = sms.api("POST", path, key, json={"name": "D", "message_template": "D {link}"})
    assert late.status_code == 409
    assert late.json["errors"]["variants"] == ["1 messages are already sent: variants cannot change now."]


def test_variant_test_table_waits_for_data(sms):
    key, campaign, _ = _setup(sms)
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    for row in _messages(sms, key, campaign["id"])[:3]:
        sms.click(row["message"].rsplit("/", 1)[1], client=sms.app.test_client())
    table = sms.api("GET", f"/campaigns/{campaign['id']}/tables/variant_test", key).json
    rows = {r["variant"]: r for r in table["rows"]}
    assert set(rows) == {"A", "B"}
    assert rows["A"]["audience"] + rows["B"]["audience"] == 12
    assert rows["A"]["unique_clicks"] + rows["B"]["unique_clicks"] == 3
    assert rows["B"]["ctr_p"] is not None
    assert table["notes"][0].startswith("Too early to call on CTR")
    breakdown = sms.api("GET", f"/campaigns/{campaign['id']}/tables/variants", key).json
    assert {r["value"] for r in breakdown["rows"]} <= {"A", "B"}


def test_audiences_for_the_next_send(sms, sms_app):
    runner = sms_app.test_cli_runner()
    key, campaign, _ = _setup(sms)
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    rows = _messages(sms, key, campaign["id"])
    code = {r["phone"]: r["message"].rsplit("/", 1)[1] for r in rows}
    bought = sms.click(code["+14155550100"], client=sms_app.test_client())
    sms.click(code["+14155550101"], ua=DESKTOP, client=sms_app.test_client())
    sms.click(code["+14155550102"], ua=ANDROID, ip="90.12.1.1", client=sms_app.test_client())
    body = {"click_id": click_id_of(bought), "event": "purchase", "revenue": "12", "currency": "USD", "order_id": "o-1"}
    sms.api("POST", "/conversions", key, json=body)

    def phones(query):
        response = sms.api("GET", f"/campaigns/{campaign['id']}/recipients?{query}", key)
        assert response.status_code == 200, response.json
        return [r["phone"] for r in response.json["recipients"]]

    assert phones("segment=converted") == ["+14155550100"]
    assert phones("segment=clicked_not_converted") == ["+14155550101", "+14155550102"]
    assert phones("segment=clicked_not_converted&device=desktop") == ["+14155550101"]
    assert len(phones("segment=not_clicked")) == 9
    assert phones("segment=clicked&country=GB") == ["+14155550100", "+14155550101"]
    variant_of = {r["phone"]: r["variant"] for r in rows}
    assert phones("segment=clicked&variant=A") == [p for p in phones("segment=clicked") if variant_of[p] == "A"]
    bad = sms.api("GET", f"/campaigns/{campaign['id']}/recipients?segment=everyone&country=Gondor", key)
    assert bad.status_code == 400 and set(bad.json["errors"]) == {"segment", "country"}
    # CSV, in the shape import-recipients reads back.
    text = sms.api("GET", f"/campaigns/{campaign['id']}/recipients?segment=clicked_not_converted&format=csv", key)
    lines = list(csv.DictReader(io.StringIO(text.get_data(as_text=True))))
    assert [(r["phone"], r["first_name"], r["device"], r["converted"]) for r in lines] == [
        ("+14155550101", "P1", "desktop", "no"), ("+14155550102", "P2", "mobile", "no")
    ]
    out = runner.invoke(args=["smstrack", "export-recipients", str(campaign["id"]), "--segment", "not_clicked"])
    assert out.exit_code == 0, out.output
    assert out.stdout.count("\n") == 10 and "9 recipients (not_clicked)." in out.stderr


def test_cli_variants_and_message_export(sms, sms_app, tmp_path):
    runner = sms_app.test_cli_runner()
    key, campaign, _ = _setup(sms, variants=())
    cid = str(campaign["id"])
    for name, text in (("A", "Hi {first_name} {link}"), ("B", "Yo {first_name} {link} €")):
        result = runner.invoke(args=["smstrack", "add-variant", cid, name, text])
        assert result.exit_code == 0 and f"Variant {name} added" in result.output
    dup = runner.invoke(args=["smstrack", "add-variant", cid, "A", "again {link}"])
    assert dup.exit_code == 1 and "already has a variant 'A'" in dup.output
    out = tmp_path / "messages.csv"
    result = runner.invoke(args=["smstrack", "export-messages", cid, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "12 messages rendered (A: 6, B: 6); 12 ready to send, 12 segments." in result.stderr
    assert "Cost: 0.0948 USD" in result.stderr
    assert "12 messages exported: the reports count them as sent." in result.stderr
    again = runner.invoke(args=["smstrack", "export-messages", cid, "-o", str(out)])
    assert "0 messages rendered (none); 0 ready to send, 0 segments." in again.stderr
    assert len(list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))) == 12
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 12 and {r["variant"] for r in rows} == {"A", "B"}
    assert all(r["message"].endswith(" €") for r in rows if r["variant"] == "B")


def test_export_needs_a_public_base_url(make_app):
    from conftest import Actions

    app = make_app()
    actions = Actions(app)
    key, campaign, _ = _setup(actions)
    result = app.test_cli_runner().invoke(args=["smstrack", "export-messages", str(campaign["id"])])
    assert result.exit_code == 1
    assert "SMSTRACK_BASE_URL is not set" in result.output
    # Through the API, the request's own address is used.
    assert actions.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key).status_code == 200
    assert IPHONE


def test_campaign_form_edits_variants_and_shows_their_cost(sms, sms_app):
    import html

    from test_dashboard import csrf_token, login

    key, campaign, _ = _setup(sms, variants=())
    client = login(sms_app)
    page = f"/smstrack/campaigns/{campaign['id']}/edit"
    token = csrf_token(client, page)
    form = {
        "csrf_token": token, "name": "Spring sale", "currency": "USD", "cost_per_segment": "0.0079",
        "variant_0_name": "A", "variant_0_weight": "1", "variant_0_message_template": "Hi {first_name}, 20% off: {link}",
        "variant_1_name": "B", "variant_1_weight": "2", "variant_1_message_template": "{first_name}, 20% off 🌷 " + "x" * 40 + " {link} {shoe_size}",
    }
    shown = client.post(page, data={**form, "action": "preview"})
    assert shown.status_code == 200
    text = html.unescape(shown.text)
    assert "GSM-7" in text and "UCS-2" in text
    # B has an emoji: UCS-2, and its link pushes it into a second segment.
    assert "The short link takes this message from 1 to 2 segments" in text
    assert "Not in the recipients' file: {shoe_size}" in text
    with sms_app.app_context():
        from wsgi import db
        from flask_smstrack.models import Variant

        assert db.session.execute(select(Variant)).first() is None  # a preview saves nothing
    saved = client.post(page, data=form)
    assert saved.status_code == 302
    names = [v["name"] for v in sms.api("GET", f"/campaigns/{campaign['id']}/variants", key).json["variants"]]
    assert names == ["A", "B"]
    again = client.get(page)
    text = html.unescape(again.text)
    # 12 recipients split 1:2; A costs one segment each, B two.
    assert "1 segment · 0.0079 each" in text and "2 segments · 0.0158 each" in text
    assert "4 recipients · 0.0316" in text and "8 recipients · 0.1264" in text
    one = {**form, "csrf_token": csrf_token(client, page), "variant_1_name": "", "variant_1_message_template": ""}
    refused = client.post(page, data=one)
    assert refused.status_code == 400
    assert "An A/B test needs at least two variants" in html.unescape(refused.text)


def test_variants_added_after_a_first_prepare_reach_the_links(sms):
    key, campaign, _ = _setup(sms, variants=(), template="-20% today, {first_name}: {link}")
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    listed = sms.api("GET", f"/campaigns/{campaign['id']}/messages?format=json&limit=1", key).json["messages"]
    assert listed[0]["message"].startswith("-20% today, P0: ")
    for name, text in (("A", "A {link}"), ("B", "B {link}")):
        sms.api("POST", f"/campaigns/{campaign['id']}/variants", key, json={"name": name, "message_template": text})
    again = sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key).json
    assert (again["assigned"], again["links_created"]) == (12, 0)
    rows = _messages(sms, key, campaign["id"])
    # The export is for SMS platforms: the message is written exactly.
    assert all(r["message"].startswith(f"{r['variant']} {BASE}/s/") for r in rows)
    b = next(r for r in rows if r["variant"] == "B")
    sms.click(b["message"].rsplit("/", 1)[1])
    table = sms.api("GET", f"/campaigns/{campaign['id']}/tables/variant_test", key).json
    assert {r["variant"]: r["unique_clicks"] for r in table["rows"]} == {"A": 0, "B": 1}


def test_ab_test_with_more_conversions_than_clicks_says_so(sms, sms_app):
    key, campaign, _ = _setup(sms)
    sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    row = _messages(sms, key, campaign["id"])[0]
    click = sms.click(row["message"].rsplit("/", 1)[1])
    for event in ("signup", "purchase"):
        body = {"click_id": click_id_of(click), "event": event, "order_id": "o-1"}
        assert sms.api("POST", "/conversions", key, json=body).status_code == 201
    table = sms.api("GET", f"/campaigns/{campaign['id']}/tables/variant_test", key).json
    assert table["notes"][1] == (
        f"Conversion rate cannot be tested: variant {row['variant']} has more conversions (2) than unique clicks (1)."
    )
    from test_dashboard import login

    page = login(sms_app).get(f"/smstrack/campaigns/{campaign['id']}")
    assert page.status_code == 200 and "Conversion rate cannot be tested" in page.text


def test_two_prepares_at_once_both_succeed(sms, sms_app):
    """Two "Prepare messages" at the same moment: the second finds the
    first's links instead of failing on them."""
    import threading

    key, campaign, _ = _setup(sms)
    results = []

    def prepare():
        results.append(sms_app.test_client().post(
            f"/smstrack/api/v1/campaigns/{campaign['id']}/messages/prepare", headers={"Authorization": f"Bearer {key}"}
        ).status_code)

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200, 200]
    with sms_app.app_context():
        from wsgi import db

        links = db.session.execute(select(Link.recipient_id).where(Link.recipient_id.is_not(None))).scalars().all()
        assert sorted(links) == sorted(set(links)) and len(links) == 12


def test_preview_as_a_campaigns_first_recipient_gets_it(sms):
    key, campaign, _ = _setup(sms, variants=())
    body = {"text": "Hi {first_name} from {city}, {shoe} {link}", "campaign_id": campaign["id"]}
    shown = sms.api("POST", "/messages/preview", key, json=body).json
    assert shown["rendered"].startswith(f"Hi P0 from City0,  {BASE}/s/")
    assert shown["unknown"] == ["shoe"] and shown["encoding"] == "GSM-7"
    other = sms.api_key("other@example.com")
    assert sms.api("POST", "/messages/preview", other, json=body).status_code == 404
