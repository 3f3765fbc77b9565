"""Opt-outs and the opt-out rate in the reports: the campaign report, the
summary and A/B tables (JSON and CSV), the campaign list and the campaign
page. The STOP webhook is not needed: opt-outs are written as it writes them."""
from __future__ import annotations

import re

from sqlalchemy import String, cast, literal, select, update

from flask_smstrack.models import OptOutEvent, Recipient
from flask_smstrack.sms.suppression import phone_hash, phone_tail
from test_dashboard import login, rows_of

BASE = "https://sms.example.com"
PEOPLE = "phone,first_name\n" + "".join(f"+1415555{100 + i:04d},P{i}\n" for i in range(12))


def _campaign(sms, key, *, variants=(("A", "Hi {first_name}: {link} Reply STOP to opt out"),
                                     ("B", "{first_name}, sale ends tonight {link} STOP=end")), name="Spring"):
    """A campaign with a link, variants and 12 recipients, prepared."""
    campaign = sms.campaign(key, name=name, cost=None, sent=None, cost_per_segment="0.0079")
    sms.link(key, campaign["id"])
    for variant, text in variants:
        made = sms.api("POST", f"/campaigns/{campaign['id']}/variants", key, json={"name": variant, "message_template": text})
        assert made.status_code == 201, made.json
    imported = sms.api("POST", f"/campaigns/{campaign['id']}/recipients", key, data=PEOPLE, content_type="text/csv",
                       json=None)
    assert imported.json["imported"] == 12
    prepared = sms.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key)
    assert prepared.status_code == 200, prepared.json
    return campaign["id"]


def _recipients(app, campaign_id) -> dict[str, tuple[int, int | None, str]]:
    """phone -> (recipient id, variant id, variant name)."""
    from wsgi import db

    from flask_smstrack.models import Variant

    with app.app_context():
        names = dict(db.session.execute(select(Variant.id, Variant.name)).all())
        rows = db.session.execute(
            select(Recipient.phone, Recipient.id, Recipient.variant_id).where(Recipient.campaign_id == campaign_id)
        ).all()
        return {phone: (rid, vid, names.get(vid)) for phone, rid, vid in rows}


def _deliver(app, campaign_id, delivered: list[str], undelivered: list[str] = ()) -> None:
    """Delivery receipts: ``delivered`` arrived, ``undelivered`` did not,
    the others are still on their way (sent)."""
    from wsgi import db

    with app.app_context():
        r = Recipient.__table__.c
        db.session.execute(
            update(Recipient).where(r.campaign_id == campaign_id)
            .values(status="sent", message_sid=literal(f"SM{campaign_id}-", String) + cast(r.id, String))
        )
        for phones, status in ((delivered, "delivered"), (undelivered, "undelivered")):
            if phones:
                db.session.execute(
                    update(Recipient).where(r.campaign_id == campaign_id, r.phone.in_(list(phones))).values(status=status)
                )
        db.session.commit()


def _event(app, phone, action="opt_out", campaign_id=None, recipient=None, owner="1", sid=None):
    """One reply, as the inbound webhook stores it."""
    from wsgi import db

    with app.app_context():
        rid, vid = (recipient[0], recipient[1]) if recipient else (None, None)
        db.session.add(OptOutEvent(
            owner_id=owner, phone_hash=phone_hash(phone), phone_tail=phone_tail(phone), action=action,
            source="reply", keyword={"opt_out": "STOP", "opt_in": "START", "help": "HELP"}[action],
            campaign_id=campaign_id, variant_id=vid, recipient_id=rid, external_id=sid,
        ))
        db.session.commit()


def _setup(sms, sms_app):
    """12 recipients; 10 delivered, 1 undelivered, 1 on its way; opt-outs
    from 3 numbers (one twice, one opted back in), a HELP, an opt-out by
    another way and one for another campaign."""
    key = sms.api_key()
    cid = _campaign(sms, key)
    other = _campaign(sms, key, name="Other")
    people = _recipients(sms_app, cid)
    phones = sorted(people)
    _deliver(sms_app, cid, phones[:10], phones[10:11])
    stop = [phones[0], phones[1], phones[5]]
    for phone in stop:
        _event(sms_app, phone, campaign_id=cid, recipient=people[phone])
    _event(sms_app, phones[0], campaign_id=cid, recipient=people[phones[0]])  # STOP twice: one number
    _event(sms_app, phones[1], "opt_in", campaign_id=cid, recipient=people[phones[1]])  # START later
    _event(sms_app, phones[2], "help", campaign_id=cid, recipient=people[phones[2]])
    _event(sms_app, phones[3])  # flask smstrack opt-out: no campaign
    other_people = _recipients(sms_app, other)
    _event(sms_app, phones[4], campaign_id=other, recipient=other_people[phones[4]])
    per_variant = {}
    for phone in stop:
        per_variant[people[phone][2]] = per_variant.get(people[phone][2], 0) + 1
    delivered = {}
    for phone in phones[:10]:
        delivered[people[phone][2]] = delivered.get(people[phone][2], 0) + 1
    return key, cid, other, per_variant, delivered


def test_report_counts_opt_outs_per_campaign(sms, sms_app):
    key, cid, other, _, _ = _setup(sms, sms_app)
    report = sms.report(key, cid)
    assert (report["sent"], report["delivered"], report["undelivered"]) == (12, 10, 1)
    # 3 numbers: a second STOP counts once; START afterwards does not take
    # one back; HELP, an opt-out made another way, and the other campaign's
    # are not this campaign's.
    assert (report["opt_outs"], report["opt_out_rate"]) == (3, 0.3)
    assert (sms.report(key, other)["opt_outs"], sms.report(key, other)["opt_out_rate"]) == (1, None)


def test_summary_csv_has_the_opt_out_columns(sms, sms_app):
    key, cid, *_ = _setup(sms, sms_app)
    (row,) = sms.api("GET", f"/campaigns/{cid}/tables/summary", key).json["rows"]
    assert (row["opt_outs"], row["opt_out_rate"]) == (3, 0.3)
    client = login(sms_app)
    header, values = rows_of(client.get(f"/smstrack/campaigns/{cid}/tables/summary.csv").text)
    assert header[-2:] == ["opt_outs", "opt_out_rate"]
    assert values[-2:] == ["3", "0.3"]


def test_ab_table_counts_opt_outs_per_variant(sms, sms_app):
    key, cid, _, per_variant, delivered = _setup(sms, sms_app)
    table = sms.api("GET", f"/campaigns/{cid}/tables/variant_test", key).json
    keys = [c["key"] for c in table["columns"]]
    assert keys[-2:] == ["opt_outs", "opt_out_rate"]
    got = {row["variant"]: (row["opt_outs"], row["opt_out_rate"]) for row in table["rows"]}
    want = {
        name: (per_variant.get(name, 0), round(per_variant.get(name, 0) / delivered[name], 6)) for name in ("A", "B")
    }
    assert got == want
    assert sum(n for n, _ in got.values()) == 3
    client = login(sms_app)
    header, *rows = rows_of(client.get(f"/smstrack/campaigns/{cid}/tables/variant_test.csv").text)
    at = header.index("opt_outs")
    assert header[at:] == ["opt_outs", "opt_out_rate"]
    assert {row[0]: int(row[at]) for row in rows} == {name: n for name, (n, _) in want.items()}


def test_campaign_list_has_opt_outs(sms, sms_app):
    key, cid, other, *_ = _setup(sms, sms_app)
    table = sms.api("GET", "/campaigns/table?sort=name", key).json
    assert [c["key"] for c in table["columns"]][-2:] == ["opt_outs", "opt_out_rate"]
    assert {r["id"]: (r["opt_outs"], r["opt_out_rate"]) for r in table["rows"]} == {cid: (3, 0.3), other: (1, None)}
    csv_text = sms.api("GET", "/campaigns/table?format=csv&sort=name", key).get_data(as_text=True)
    header, *rows = rows_of(csv_text)
    assert header[-2:] == ["opt_outs", "opt_out_rate"]
    assert {row[0]: row[-2:] for row in rows} == {str(other): ["1", ""], str(cid): ["3", "0.3"]}


def test_opt_in_after_opt_out_still_counts(sms, sms_app):
    """START does not cancel the count; a number that stops again after
    opting back in is still one."""
    key = sms.api_key()
    cid = _campaign(sms, key)
    people = _recipients(sms_app, cid)
    phone = sorted(people)[0]
    _deliver(sms_app, cid, sorted(people))
    for action in ("opt_out", "opt_in", "opt_out", "opt_in"):
        _event(sms_app, phone, action, campaign_id=cid, recipient=people[phone])
    report = sms.report(key, cid)
    assert (report["opt_outs"], report["delivered"], report["opt_out_rate"]) == (1, 12, round(1 / 12, 6))
    # Opting in alone is no opt-out.
    _event(sms_app, sorted(people)[1], "opt_in", campaign_id=cid, recipient=people[sorted(people)[1]])
    assert sms.report(key, cid)["opt_outs"] == 1


def test_nothing_delivered_has_no_rate(sms, sms_app):
    key = sms.api_key()
    cid = _campaign(sms, key)
    people = _recipients(sms_app, cid)
    phone = sorted(people)[0]
    _event(sms_app, phone, campaign_id=cid, recipient=people[phone])
    # Prepared, no delivery receipt yet: delivered is unknown.
    report = sms.report(key, cid)
    assert (report["opt_outs"], report["delivered"], report["opt_out_rate"]) == (1, None, None)
    table = sms.api("GET", f"/campaigns/{cid}/tables/variant_test", key).json
    assert [(r["opt_outs"], r["opt_out_rate"]) for r in table["rows"]] == [
        (1 if people[phone][2] == name else 0, None) for name in ("A", "B")
    ]
    # Every receipt said undelivered: none delivered, still no rate.
    _deliver(sms_app, cid, [], sorted(people))
    report = sms.report(key, cid)
    assert (report["opt_outs"], report["delivered"], report["opt_out_rate"]) == (1, 0, None)
    # A campaign without any opt-out: 0, and a rate of 0 once delivered.
    quiet = _campaign(sms, key, name="Quiet")
    _deliver(sms_app, quiet, sorted(_recipients(sms_app, quiet)))
    report = sms.report(key, quiet)
    assert (report["opt_outs"], report["opt_out_rate"]) == (0, 0.0)


def _opt_out_card(page: str) -> str:
    match = re.search(r'<details class="st-fold" id="opt-outs".*?</details>', page, re.S)
    assert match, "no Opt-outs card on the page"
    return match.group(0)


def _facts(card: str) -> dict[str, str]:
    return dict(re.findall(r'data-fact="([\w-]+)"><dt>[^<]+</dt><dd class="st-fact-value">([^<]*)</dd>', card))


def test_campaign_page_shows_opt_outs_and_left_out(sms, sms_app):
    key, cid, _, per_variant, delivered = _setup(sms, sms_app)
    from wsgi import db

    # Two more recipients were on the suppression list when the campaign
    # was prepared: they are left out.
    with sms_app.app_context():
        db.session.add_all([
            Recipient(campaign_id=cid, phone=f"+1415555099{i}", status="suppressed", attributes={}) for i in range(2)
        ])
        db.session.commit()
    client = login(sms_app)
    page = client.get(f"/smstrack/campaigns/{cid}")
    assert page.status_code == 200
    card = _opt_out_card(page.text)
    assert _facts(card) == {"opt-outs": "3", "opt-out-rate": "30.0%", "suppressed": "2"}
    assert "opted out ÷ delivered (10)" in card
    assert "already on your opt-out list" in card and "a later START" in card
    variants = dict(re.findall(r'data-variant="(\w)">.*?<strong class="st-status-count">(\d+)</strong>', card))
    assert variants == {name: str(per_variant.get(name, 0)) for name in ("A", "B")}
    # The A/B table on the Messages card keeps its columns.
    assert "Opt-outs</th>" not in page.text.split('id="opt-outs"')[0]


def test_campaign_page_without_recipients_has_no_opt_out_card(sms, sms_app):
    key = sms.api_key()
    campaign = sms.campaign(key)
    page = login(sms_app).get(f"/smstrack/campaigns/{campaign['id']}")
    assert page.status_code == 200 and 'id="opt-outs"' not in page.text


def test_campaign_list_sorts_by_opt_out_rate(sms, sms_app):
    from wsgi import db

    from flask_smstrack.models import Campaign

    key, spring, other, *_ = _setup(sms, sms_app)
    # Campaigns sent elsewhere, with their delivered count entered by hand.
    entered = sms.campaign(key, name="Entered")["id"]
    clean = sms.campaign(key, name="Clean")["id"]
    with sms_app.app_context():
        db.session.get(Campaign, entered).delivered = 20
        db.session.get(Campaign, clean).delivered = 50
        db.session.commit()
    _event(sms_app, "+14155559999", campaign_id=entered)
    rates = {spring: 0.3, other: None, entered: 0.05, clean: 0.0}
    for direction, order in (("desc", [spring, entered, clean, other]), ("asc", [clean, entered, spring, other])):
        rows = sms.api("GET", f"/campaigns/table?sort=opt_out_rate&dir={direction}", key).json["rows"]
        assert [r["id"] for r in rows] == order, direction
        assert {r["id"]: r["opt_out_rate"] for r in rows} == rates
    page = login(sms_app).get("/smstrack/?sort=opt_out_rate")
    assert page.status_code == 200
    assert 'title="Sort by opt-out rate">Opt-outs' in page.text
    cells = re.findall(r'<td data-opt-outs="(\d+)">([^<]*)(?:<br><span class="st-muted st-small">([^<]+)</span>)?</td>', page.text)
    assert cells == [("3", "30.0%", "3 opted out"), ("1", "5.0%", "1 opted out"), ("0", "0.0%", ""), ("1", "–", "1 opted out")]
