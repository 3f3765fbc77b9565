"""Messages exported for another SMS platform, and that platform's delivery
report read back: per-platform column maps, --map, row errors, and the
same numbers in the report, the dashboard's numbers source and the CSV."""
import csv
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from conftest import Actions
from flask_smstrack.models import Campaign, Recipient

PEOPLE = "phone,first_name\n+14155550100,Ana\n+14155550101,Ben\n+14155550102,Cy\n+14155550103,Dee\n"

SIMPLETEXTING = (
    "Phone Number,Status,Delivered At,Clicked,Cost\n"
    "(415) 555-0100,Delivered,2026-11-27 10:05:00,Yes,0.0120\n"
    "+14155550101,Delivered,2026-11-27T10:06:00Z,No,0.0120\n"
    "+14155550102,Undelivered,,No,0.0120\n"
    "+14155550103,Lost in space,,No,0.0120\n"
    "+14155550199,Delivered,,No,0.0120\n"
)
EZTEXTING = (
    "PhoneNumber,DeliveryStatus,DeliveredDate,LinkClicks,Price\n"
    "4155550100,delivered,2026-11-27T10:05:00+00:00,2,0.02\n"
    "4155550101,failed,,0,0.02\n"
    "4155550102,delivered,,zero,0.02\n"
)


@pytest.fixture
def exported(sms_app):
    """A campaign with four recipients whose messages were exported."""
    actions = Actions(sms_app)
    key = actions.api_key()
    campaign = actions.campaign(key, cost=None, sent=None, message_template="Hi {first_name}: {link} STOP to end")
    actions.link(key, campaign["id"])
    reply = actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data=PEOPLE, content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert reply.status_code == 200, reply.json
    out = sms_app.test_cli_runner().invoke(args=["smstrack", "export-messages", str(campaign["id"])])
    assert out.exit_code == 0, out.output
    assert "phone,message" in out.output
    return actions, key, campaign["id"]


def _import(app, campaign_id, text, tmp_path, *args):
    path = tmp_path / "report.csv"
    path.write_text(text, encoding="utf-8")
    return app.test_cli_runner().invoke(
        args=["smstrack", "import-report", str(campaign_id), str(path), *args]
    )


def _statuses(app, campaign_id):
    from wsgi import db

    with app.app_context():
        rows = db.session.execute(select(Recipient).where(Recipient.campaign_id == campaign_id)).scalars()
        return {r.phone: (r.status, r.cost) for r in rows}


def test_simpletexting_report_sets_statuses_costs_and_errors(sms_app, exported, tmp_path):
    actions, key, campaign_id = exported
    out = _import(sms_app, campaign_id, SIMPLETEXTING, tmp_path, "--platform", "simpletexting")
    assert out.exit_code == 0, out.output
    assert "Read 3 rows: 3 statuses updated, 1 clicked; 2 rows left out." in out.stdout
    assert "The campaign's cost is now the sum of the report's prices: 0.0360 USD." in out.stdout
    assert "line 5, column 'Status' (status): 'Lost in space' is not a delivery status we know" in out.stderr
    assert "line 6: no recipient of campaign" in out.stderr
    assert _statuses(sms_app, campaign_id) == {
        "+14155550100": ("delivered", Decimal("0.0120")), "+14155550101": ("delivered", Decimal("0.0120")),
        "+14155550102": ("undelivered", Decimal("0.0120")), "+14155550103": ("exported", None),
    }
    report = actions.report(key, campaign_id)
    assert (report["sent"], report["delivered"], report["undelivered"]) == (4, 2, 1)
    assert report["cost"] == "0.036"
    # The same numbers in the campaign list's CSV (as the dashboard lists it).
    listed = actions.api("GET", "/campaigns/table?format=csv", key)
    assert listed.status_code == 200
    row = next(r for r in csv.DictReader(io.StringIO(listed.get_data(as_text=True))) if r["id"] == str(campaign_id))
    assert (row["sent"], row["delivered"], Decimal(row["cost"])) == ("4", "2", Decimal("0.036"))

    # Read again: statuses only move forward, nothing is counted twice.
    again = _import(sms_app, campaign_id, SIMPLETEXTING, tmp_path, "--platform", "simpletexting")
    assert "Read 3 rows: 0 statuses updated" in again.stdout
    assert actions.report(key, campaign_id)["cost"] == "0.036"


def test_eztexting_report_through_the_api(sms_app, exported):
    actions, key, campaign_id = exported
    reply = actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign_id}/delivery-report",
        data={"platform": "eztexting", "file": (io.BytesIO(EZTEXTING.encode()), "report.csv")},
        headers={"Authorization": f"Bearer {key}"}, content_type="multipart/form-data",
    )
    assert reply.status_code == 200, reply.json
    assert (reply.json["matched"], reply.json["updated"], reply.json["clicked"], reply.json["cost"]) == (2, 2, 1, "0.04")
    assert reply.json["errors"] == [{
        "line": 4,
        "message": "line 4, column 'LinkClicks' (clicked): 'zero' is not yes/no, true/false or a number of clicks",
    }]
    assert _statuses(sms_app, campaign_id)["+14155550101"] == ("failed", Decimal("0.0200"))


def test_map_overrides_the_platform_columns(sms_app, exported, tmp_path):
    _, _, campaign_id = exported
    text = "Mobile,Result,Charge\n+14155550100,delivered,0.05\n"
    out = _import(sms_app, campaign_id, text, tmp_path, "--map", "Mobile=phone", "--map", "Result=status",
                  "--map", "Charge=cost")
    assert "Read 1 rows: 1 statuses updated" in out.stdout
    assert _statuses(sms_app, campaign_id)["+14155550100"] == ("delivered", Decimal("0.0500"))


@pytest.mark.parametrize(("text", "args", "message"), [
    ("Mobile,Status\n+14155550100,delivered\n", (), "no phone column: name one of 'phone'"),
    ("phone\n+14155550100\n", ("--map", "Nope=phone"), "no column 'Nope' in the first line"),
    ("phone\n+14155550100\n", ("--map", "phone=price"), "the field must be one of phone, status"),
    ("", (), "the file is empty"),
])
def test_unusable_files_say_why(sms_app, exported, tmp_path, text, args, message):
    _, _, campaign_id = exported
    out = _import(sms_app, campaign_id, text, tmp_path, *args)
    assert out.exit_code == 1 and message in out.stderr


def test_api_refusals(sms_app, exported):
    actions, key, campaign_id = exported
    url = f"/smstrack/api/v1/campaigns/{campaign_id}/delivery-report"
    auth = {"Authorization": f"Bearer {key}"}
    assert actions.client.post(url, data="phone\n", content_type="text/csv", headers=auth).status_code == 415
    missing = actions.client.post(url, data={"platform": "generic"}, content_type="multipart/form-data", headers=auth)
    assert missing.status_code == 400 and "file" in missing.json["errors"]
    bad = actions.client.post(url, data={"platform": "textmagic", "file": (io.BytesIO(b"phone\n"), "r.csv")},
                              content_type="multipart/form-data", headers=auth)
    assert bad.status_code == 400 and "platform" in bad.json["errors"]
    not_utf8 = actions.client.post(url, data={"file": (io.BytesIO(b"phone\n\xff\xfe"), "r.csv")},
                                   content_type="multipart/form-data", headers=auth)
    assert not_utf8.status_code == 400 and not_utf8.json["errors"]["file"] == ["Not UTF-8 text."]
    assert actions.client.post(url, data={"file": (io.BytesIO(b"phone\n"), "r.csv")},
                               content_type="multipart/form-data").status_code == 401


def test_a_campaign_priced_per_message_keeps_its_price(sms_app, exported, tmp_path):
    actions, key, campaign_id = exported
    from wsgi import db

    with sms_app.app_context():
        db.session.get(Campaign, campaign_id).cost_per_message = Decimal("0.01")
        db.session.commit()
    _import(sms_app, campaign_id, SIMPLETEXTING, tmp_path, "--platform", "simpletexting")
    assert actions.report(key, campaign_id)["cost"] == "0.04"
