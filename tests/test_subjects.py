"""One person's data: export, erasure, forgetting numbers after a while,
and storing less (no addresses, only the columns the messages use)."""
import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import JSON, String, Text, select, update

from conftest import DESKTOP, click_id_of
from flask_smstrack.models import Base, Campaign, Click, Recipient, Suppression

BASE = "https://sms.example.com"
ZEB = "+14155550142"
#: The number in every form it could be written, and what was imported with it.
NEEDLES = [ZEB, "14155550142", "4155550142", "(415) 555-0142", "415-555-0142", "415 555 0142",
           "Zebulon", "Quillbury", "cust-zeb-77", "SMzeb0142"]
PEOPLE = (
    "phone,external_id,first_name,city\n"
    "+14155550100,cust-ana,Ana,Oakland\n"
    "(415) 555-0142,cust-zeb-77,Zebulon,Quillbury\n"
    "+14155550101,cust-ben,Ben,Fresno\n"
)


@pytest.fixture
def app(make_app):
    return make_app(SMSTRACK_BASE_URL=BASE)


def _db():
    from wsgi import db

    return db


def _campaign(actions, key, name="Spring sale", people=PEOPLE):
    campaign = actions.campaign(key, name=name, cost=None, sent=None, cost_per_segment="0.0079",
                                message_template="Hi {first_name} from {city}: {link}")
    actions.link(key, campaign["id"])
    imported = actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data=people, content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert imported.status_code == 200, imported.json
    assert actions.api("POST", f"/campaigns/{campaign['id']}/messages/prepare", key).status_code == 200
    exported = actions.api("POST", f"/campaigns/{campaign['id']}/messages/export", key)
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    return campaign, {r["phone"]: r["message"].rsplit("/", 1)[1] for r in rows}


def _everything(app, key, campaign_ids) -> dict:
    """Every report of the campaigns: the JSON and every table as CSV."""
    from flask_smstrack.reports.tables import TABLES

    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    out = {}
    for cid in campaign_ids:
        out[cid, "report"] = client.get(f"/smstrack/api/v1/campaigns/{cid}/report", headers=auth).json
        for name in TABLES:
            response = client.get(f"/smstrack/api/v1/campaigns/{cid}/tables/{name}?format=csv", headers=auth)
            assert response.status_code == 200, (name, response.json)
            out[cid, name] = response.get_data(as_text=True)
    return out


def _stored_text(app) -> list[tuple[str, str, str]]:
    """``(table, column, text)`` of every string, text and JSON value stored."""
    found = []
    with app.app_context():
        db = _db()
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, (String, Text, JSON))]
            if not columns:
                continue
            for row in db.session.execute(select(*columns)):
                for column, value in zip(columns, row):
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    found.append((table.name, column.name, text))
    return found


@pytest.fixture
def world(app, actions):
    """The number in two owners' campaigns, with clicks, a forward and a
    conversion; Ana and Ben beside it."""
    admin = actions.api_key("admin@example.com", admin=True)
    owner = actions.api_key("owner@example.com")
    other = actions.api_key("other@example.com")
    first, codes = _campaign(actions, owner)
    second, codes2 = _campaign(actions, other, name="Summer sale")
    with app.app_context():
        db = _db()
        r = Recipient.__table__.c
        db.session.execute(update(Recipient).where(r.campaign_id == first["id"], r.phone == ZEB)
                           .values(status="delivered", message_sid="SMzeb0142"))
        db.session.execute(update(Recipient).where(r.campaign_id == first["id"], r.phone == "+14155550100")
                           .values(status="failed", message_sid="SMana0100"))
        db.session.commit()
    zeb = actions.click(codes[ZEB], client=app.test_client())
    actions.click(codes[ZEB], ua=DESKTOP, ip="90.12.1.1", client=app.test_client())  # forwarded
    actions.click(codes["+14155550101"], client=app.test_client())
    actions.click(codes2[ZEB], client=app.test_client())
    body = {"click_id": click_id_of(zeb), "event": "purchase", "revenue": "42.50", "currency": "USD", "order_id": "o-1"}
    assert actions.api("POST", "/conversions", owner, json=body).status_code == 201
    return {"admin": admin, "owner": owner, "other": other, "campaigns": [first["id"], second["id"]]}


def test_export_gathers_the_number_across_owners(app, actions, world):
    response = actions.api("POST", "/subjects/export", world["admin"], json={"phone": "(415) 555-0142"})
    assert response.status_code == 200, response.json
    data = response.json
    assert data["phone"] == ZEB
    first, second = world["campaigns"]
    assert [(r["campaign_id"], r["campaign_name"], r["status"]) for r in data["recipients"]] == [
        (first, "Spring sale", "delivered"), (second, "Summer sale", "exported")
    ]
    zeb = data["recipients"][0]
    assert (zeb["phone"], zeb["external_id"], zeb["attributes"]) == (ZEB, "cust-zeb-77", {"first_name": "Zebulon", "city": "Quillbury"})
    assert zeb["message"].startswith("Hi Zebulon from Quillbury: https://sms.example.com/s/")
    assert (zeb["message_sid"], zeb["segments"], zeb["forgotten"]) == ("SMzeb0142", 1, False)
    assert [(c["campaign_id"], c["kind"], c["ip"]) for c in data["clicks"]] == [
        (first, "human", "81.2.69.0"), (first, "forward", "90.12.1.0"), (second, "human", "81.2.69.0")
    ]
    assert [(c["event"], c["revenue"], c["currency"]) for c in data["conversions"]] == [("purchase", "42.50", "USD")]
    assert len(data["links"]) == 2 and data["suppressions"] == [] and data["opt_out_events"] == []


def test_erasure_leaves_no_trace_and_reports_unchanged(app, actions, world):
    first, second = world["campaigns"]
    before = _everything(app, world["admin"], world["campaigns"])
    assert (before[first, "report"]["sent"], before[first, "report"]["unique_clicks"]) == (3, 2)
    assert any(needle in text for *_, text in _stored_text(app) for needle in NEEDLES)

    response = actions.api("POST", "/subjects/erase", world["admin"], json={"phone": "4155550142"})
    assert response.status_code == 200, response.json
    assert response.json == {
        "phone_tail": "42", "erased": {"recipients": 2, "clicks": 3, "conversions": 1, "suppressions": 2}
    }
    leaks = [(table, column) for table, column, text in _stored_text(app) for needle in NEEDLES if needle in text]
    assert leaks == []
    assert _everything(app, world["admin"], world["campaigns"]) == before

    with app.app_context():
        from flask_smstrack.sms.suppression import is_suppressed, phone_hash

        db = _db()
        entries = db.session.execute(select(Suppression).order_by(Suppression.owner_id)).scalars().all()
        owners = sorted(db.session.execute(select(Campaign.owner_id).where(Campaign.id.in_(world["campaigns"]))).scalars())
        assert [(s.owner_id, s.phone_hash, s.phone_tail, s.source) for s in entries] == [
            (o, phone_hash(ZEB), "42", "erasure") for o in owners
        ]
        assert all(is_suppressed(o, ZEB) for o in owners)
        stubs = db.session.execute(select(Recipient).where(Recipient.phone.is_(None)).order_by(Recipient.id)).scalars().all()
        assert [(s.campaign_id, s.status, s.segments, s.message_sid is not None) for s in stubs] == [
            (first, "delivered", 1, True), (second, "exported", 1, False)
        ]
        assert db.session.execute(select(Click.recipient_id).where(Click.recipient_id.in_([s.id for s in stubs]))).all() == []

    # Nothing about it left to export but the suppressions; the others' messages stay.
    again = actions.api("POST", "/subjects/export", world["admin"], json={"phone": ZEB}).json
    assert (again["recipients"], again["clicks"], again["conversions"]) == ([], [], [])
    assert [s["source"] for s in again["suppressions"]] == ["erasure", "erasure"]
    messages = actions.api("GET", f"/campaigns/{first}/messages?format=json", world["owner"]).json["messages"]
    assert [m["phone"] for m in messages] == ["+14155550100", "+14155550101"]
    audience = actions.api("GET", f"/campaigns/{first}/recipients", world["owner"]).json["recipients"]
    assert [m["phone"] for m in audience] == ["+14155550100", "+14155550101"]

    # Imported again into a new campaign, the number is still known as
    # suppressed: its recipient is held back, and its message never exported.
    third, codes = _campaign(actions, world["owner"], name="Autumn sale")
    assert ZEB not in codes
    with app.app_context():
        held = _db().session.execute(
            select(Recipient.status).where(Recipient.campaign_id == third["id"], Recipient.phone == ZEB)
        ).scalar_one()
        assert held == "suppressed"

    # Erasing again takes the new row (the owner's suppression is there), then nothing more.
    repeat = actions.api("POST", "/subjects/erase", world["admin"], json={"phone": ZEB}).json
    assert repeat["erased"] == {"recipients": 1, "clicks": 0, "conversions": 0, "suppressions": 0}
    repeat = actions.api("POST", "/subjects/erase", world["admin"], json={"phone": ZEB}).json
    assert repeat["erased"] == {"recipients": 0, "clicks": 0, "conversions": 0, "suppressions": 0}


def test_a_number_nobody_had_is_suppressed_for_everyone(app, actions):
    admin = actions.api_key("admin@example.com", admin=True)
    response = actions.api("POST", "/subjects/erase", admin, json={"phone": "+447911123456"})
    assert response.json["erased"] == {"recipients": 0, "clicks": 0, "conversions": 0, "suppressions": 1}
    with app.app_context():
        from flask_smstrack.sms.suppression import is_suppressed

        assert is_suppressed("anyone", "+447911123456")


def test_subject_api_is_for_admins_and_checks_the_number(app, actions, world):
    for path in ("/subjects/export", "/subjects/erase"):
        denied = actions.api("POST", path, world["owner"], json={"phone": ZEB})
        assert denied.status_code == 403 and "admin" in denied.json["errors"]["_request"][0]
        for body in ({"phone": "not a number"}, {"phone": "+1 415 555"}, {}, {"phone": 4155550142}, {"phone": ZEB, "x": 1}):
            bad = actions.api("POST", path, world["admin"], json=body)
            assert bad.status_code == 400, body
            assert set(bad.json["errors"]) == ({"x"} if "x" in body else {"phone"})
    # A refused erasure erased nothing.
    assert len(actions.api("POST", "/subjects/export", world["admin"], json={"phone": ZEB}).json["recipients"]) == 2
    paths = actions.client.get("/smstrack/api/v1/openapi.json").json["paths"]
    assert set(paths["/subjects/erase"]["post"]["responses"]) >= {"200", "400", "401", "403"}


def test_subject_cli(app, world, tmp_path):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["smstrack", "subject", "export", "(415) 555-0142"])
    assert out.exit_code == 0, out.output
    assert [r["external_id"] for r in json.loads(out.stdout)["recipients"]] == ["cust-zeb-77", "cust-zeb-77"]
    target = tmp_path / "zeb.json"
    out = runner.invoke(args=["smstrack", "subject", "export", ZEB, "--output", str(target)])
    assert out.exit_code == 0 and "2 recipient rows, 3 clicks, 1 conversions" in out.stderr
    assert json.loads(target.read_text())["phone"] == ZEB
    assert runner.invoke(args=["smstrack", "subject", "export", "12"]).exit_code == 2

    refused = runner.invoke(args=["smstrack", "subject", "erase", ZEB], input="n\n")
    assert refused.exit_code == 1 and "Erase +14155550142: 2 recipient rows, 3 clicks, 1 conversions?" in refused.output
    assert json.loads(runner.invoke(args=["smstrack", "subject", "export", ZEB]).stdout)["recipients"][0]["phone"] == ZEB
    done = runner.invoke(args=["smstrack", "subject", "erase", ZEB], input="y\n")
    assert done.exit_code == 0, done.output
    assert "smstrack_recipients: 2 rows emptied" in done.output
    assert "smstrack_clicks: 3 unlinked" in done.output and "smstrack_suppressions: 2 added" in done.output
    quiet = runner.invoke(args=["smstrack", "subject", "erase", "+14155550100", "--yes"])
    assert quiet.exit_code == 0 and "smstrack_recipients: 2 rows emptied" in quiet.output


# -- forgetting numbers --------------------------------------------------------


def _age(app, campaign_id, days):
    """The campaign's messages went out ``days`` ago."""
    with app.app_context():
        db = _db()
        when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
        db.session.execute(update(Recipient).where(Recipient.campaign_id == campaign_id).values(sent_at=when))
        db.session.commit()


def test_forget_phones_after_days(make_app, tmp_path):
    from conftest import Actions

    app = make_app(SMSTRACK_BASE_URL=BASE, SMSTRACK_FORGET_PHONES_AFTER_DAYS=30)
    actions = Actions(app)
    admin = actions.api_key("admin@example.com", admin=True)
    old, codes = _campaign(actions, admin)
    recent, _ = _campaign(actions, admin, name="Recent")
    never = actions.campaign(admin, name="Never sent")
    actions.client.post(f"/smstrack/api/v1/campaigns/{never['id']}/recipients", data=PEOPLE, content_type="text/csv",
                        headers={"Authorization": f"Bearer {admin}"})
    # Old campaign: also one recipient imported later and never sent.
    actions.client.post(f"/smstrack/api/v1/campaigns/{old['id']}/recipients", data="phone\n+14155550199\n",
                        content_type="text/csv", headers={"Authorization": f"Bearer {admin}"})
    actions.click(codes[ZEB])
    _age(app, old["id"], 31)
    _age(app, recent["id"], 29)
    before = _everything(app, admin, [old["id"]])
    runner = app.test_cli_runner()

    dry = runner.invoke(args=["smstrack", "forget-phones", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Would forget 4 numbers of 1 campaigns" in dry.output and f"(campaigns: {old['id']})" in dry.output
    assert "1 of them were never sent" in dry.output
    with app.app_context():
        assert _db().session.execute(select(Recipient.phone).where(Recipient.phone.is_(None))).all() == []

    out = runner.invoke(args=["smstrack", "forget-phones"])
    assert out.exit_code == 0 and "Forgot 4 numbers of 1 campaigns" in out.output
    assert _everything(app, admin, [old["id"]]) == before
    with app.app_context():
        from flask_smstrack.sms.suppression import phone_hash

        db = _db()
        rows = db.session.execute(
            select(Recipient.campaign_id, Recipient.phone, Recipient.phone_hash, Recipient.phone_tail).order_by(Recipient.id)
        ).all()
        forgotten = [(p, h, t) for cid, p, h, t in rows if cid == old["id"]]
        assert forgotten == [(None, phone_hash(n), n[-2:]) for n in ("+14155550100", ZEB, "+14155550101", "+14155550199")]
        assert all(p is not None for cid, p, _, _ in rows if cid != old["id"])
        assert db.session.get(Campaign, old["id"]).phones_forgotten_at is not None
        assert db.session.get(Campaign, recent["id"]).phones_forgotten_at is None
    # Nothing more is due; the unsent recipient is neither prepared nor exported.
    assert "Forgot 0 numbers" in runner.invoke(args=["smstrack", "forget-phones"]).output
    prepared = actions.api("POST", f"/campaigns/{old['id']}/messages/prepare", admin).json
    assert (prepared["prepared"], prepared["ready"]) == (0, 0)
    assert actions.api("GET", f"/campaigns/{old['id']}/messages?format=json", admin).json["messages"] == []

    # A later import merges with the forgotten numbers by their hash.
    again = actions.client.post(
        f"/smstrack/api/v1/campaigns/{old['id']}/recipients", data="phone,city\n4155550142,Elsewhere\n+14155550177,X\n",
        content_type="text/csv", headers={"Authorization": f"Bearer {admin}"},
    ).json
    assert (again["imported"], again["merged"]) == (1, 1)
    # Exported and erased by hash.
    data = actions.api("POST", "/subjects/export", admin, json={"phone": ZEB}).json
    assert [(r["campaign_id"], r["forgotten"], r["phone_tail"], r["attributes"]["city"]) for r in data["recipients"]] == [
        (old["id"], True, "42", "Elsewhere"), (recent["id"], False, None, "Quillbury"),
        (never["id"], False, None, "Quillbury"),
    ]
    assert len(data["clicks"]) == 1
    erased = actions.api("POST", "/subjects/erase", admin, json={"phone": ZEB}).json["erased"]
    assert erased == {"recipients": 3, "clicks": 1, "conversions": 0, "suppressions": 1}
    assert [(t, c) for t, c, text in _stored_text(app) for n in NEEDLES if n in text] == []
    with app.app_context():
        from flask_smstrack.sms.suppression import phone_hash

        hashes = _db().session.execute(select(Recipient.phone_hash).where(Recipient.phone_hash.is_not(None))).scalars()
        assert phone_hash(ZEB) not in set(hashes)


def test_forget_phones_is_off_by_default(app, actions):
    admin = actions.api_key("admin@example.com", admin=True)
    campaign, _ = _campaign(actions, admin)
    _age(app, campaign["id"], 3650)
    out = app.test_cli_runner().invoke(args=["smstrack", "forget-phones"])
    assert out.exit_code == 0 and "SMSTRACK_FORGET_PHONES_AFTER_DAYS is not set" in out.output
    with app.app_context():
        from flask_smstrack.sms.forgetting import forget_due_phones

        assert forget_due_phones().campaigns == []
        assert _db().session.execute(select(Recipient.id).where(Recipient.phone.is_(None))).all() == []


def test_forget_uses_the_campaign_send_time_without_recipient_times(make_app):
    from conftest import Actions

    app = make_app(SMSTRACK_BASE_URL=BASE, SMSTRACK_FORGET_PHONES_AFTER_DAYS=7)
    actions = Actions(app)
    admin = actions.api_key("admin@example.com", admin=True)
    campaign, _ = _campaign(actions, admin)  # exported: no recipient sent_at
    sent_at = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
    with app.app_context():
        from flask_smstrack.sms.forgetting import forget_due_phones

        db = _db()
        db.session.execute(update(Campaign).where(Campaign.id == campaign["id"]).values(sent_at=sent_at))
        db.session.commit()
        assert forget_due_phones(now=sent_at + dt.timedelta(days=6), dry_run=True).campaigns == []
        result = forget_due_phones(now=sent_at + dt.timedelta(days=8))
        assert (result.campaigns, result.recipients, result.unsent) == ([campaign["id"]], 3, 0)
        assert db.session.get(Campaign, campaign["id"]).phones_forgotten_at == sent_at + dt.timedelta(days=8)


@pytest.mark.parametrize("retention", [None, 30])
def test_purge_forgets_the_numbers_that_are_due(make_app, retention):
    """``purge`` (run from cron) also forgets numbers, with or without a
    retention period for raw clicks."""
    from conftest import Actions

    app = make_app(SMSTRACK_BASE_URL=BASE, SMSTRACK_FORGET_PHONES_AFTER_DAYS=30, SMSTRACK_RETENTION_DAYS=retention)
    actions = Actions(app)
    admin = actions.api_key("admin@example.com", admin=True)
    old, _ = _campaign(actions, admin)
    _age(app, old["id"], 31)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["smstrack", "purge", "--dry-run"])
    assert dry.exit_code == 0 and "Would forget 3 numbers of 1 campaigns" in dry.output, dry.output
    out = runner.invoke(args=["smstrack", "purge"])
    assert out.exit_code == 0 and "Forgot 3 numbers of 1 campaigns" in out.output, out.output
    with app.app_context():
        phones = _db().session.execute(select(Recipient.phone).where(Recipient.campaign_id == old["id"])).scalars()
        assert list(phones) == [None, None, None]


# -- storing less --------------------------------------------------------------


@pytest.mark.parametrize("store_ip, expected", [(True, "81.2.69.0"), (False, None)])
def test_store_ip(make_app, store_ip, expected):
    from conftest import Actions

    app = make_app(SMSTRACK_STORE_IP=store_ip)
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key)
    link = actions.link(key, campaign["id"])
    actions.click(link["code"])
    with app.app_context():
        from flask_smstrack.state import get_state
        from flask_smstrack.tracking.classify import Agent
        from flask_smstrack.tracking.clicks import click_row, new_click_id
        from flask_smstrack.tracking.spool import replay_spool, spool_click

        # A click spooled while addresses were still stored.
        row = click_row(new_click_id(), dt.datetime.now(dt.timezone.utc), link["id"], campaign["id"], "human",
                        Agent("human", "mobile", "iOS", "Safari"), ip="81.2.69.0", country="GB")
        spool_click(get_state().spool_dir, row)
        assert replay_spool() == (1, 0)
        clicks = _db().session.execute(select(Click.ip, Click.country).order_by(Click.id)).all()
    assert clicks == [(expected, "GB"), (expected, "GB")]


def test_keep_columns(app, actions, tmp_path):
    key = actions.api_key()
    campaign = actions.campaign(key, message_template="Hi {first_name}: {link}")
    actions.api("POST", f"/campaigns/{campaign['id']}/variants", key, json={"name": "A", "message_template": "Hi {first_name} {link}"})
    actions.api("POST", f"/campaigns/{campaign['id']}/variants", key, json={"name": "B", "message_template": "{city} deal {link}"})
    people = "phone,first_name,city,birthday,loyalty_tier\n+14155550100,Ana,Oakland,1990-01-01,gold\n"
    url = f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients"
    auth = {"Authorization": f"Bearer {key}"}
    response = actions.client.post(f"{url}?keep_columns=true", data=people, content_type="text/csv", headers=auth)
    assert response.status_code == 200, response.json
    assert response.json["dropped_columns"] == ["birthday", "loyalty_tier"]
    bad = actions.client.post(f"{url}?keep_columns=yes", data=people, content_type="text/csv", headers=auth)
    assert bad.status_code == 400 and set(bad.json["errors"]) == {"keep_columns"}
    bare = actions.campaign(key, name="No message yet")
    none = actions.client.post(f"/smstrack/api/v1/campaigns/{bare['id']}/recipients?keep_columns=true", data=people,
                               content_type="text/csv", headers=auth)
    assert none.status_code == 400 and "no message yet" in none.json["errors"]["keep_columns"][0]

    path = str(tmp_path / "people.csv")
    with open(path, "w") as f:
        f.write(people.replace("+14155550100,Ana", "+14155550101,Ben"))
    runner = app.test_cli_runner()
    out = runner.invoke(args=["smstrack", "import-recipients", str(campaign["id"]), path, "--keep-columns"])
    assert out.exit_code == 0, out.output
    assert "Columns not stored (no template uses them): birthday, loyalty_tier" in out.output
    refused = runner.invoke(args=["smstrack", "import-recipients", str(bare["id"]), path, "--keep-columns"])
    assert refused.exit_code == 1 and "--keep-columns: the campaign has no message yet" in refused.output
    with app.app_context():
        rows = _db().session.execute(
            select(Recipient.phone, Recipient.attributes).where(Recipient.campaign_id == campaign["id"]).order_by(Recipient.id)
        ).all()
    assert rows == [("+14155550100", {"first_name": "Ana", "city": "Oakland"}),
                    ("+14155550101", {"first_name": "Ben", "city": "Oakland"})]


@pytest.mark.parametrize("admin, status", [(True, 200), (False, 403)])
def test_subject_api_with_a_dashboard_session(app, actions, admin, status):
    from test_dashboard import csrf_token, login

    actions.user("someone@example.com", admin=admin)
    client = login(app, "someone@example.com")
    token = csrf_token(client, "/smstrack/campaigns/new")
    response = client.post("/smstrack/api/v1/subjects/export", json={"phone": ZEB}, headers={"X-CSRFToken": token})
    assert response.status_code == status, response.json
