from sqlalchemy import select

from flask_smstrack.models import Recipient

CSV = """phone,first_name,city,external_id
(415) 555-0100,Ana,San Francisco,c-1
+1 415 555 0101,Ben,Oakland,c-2
not a number,Cy,Reno,c-3
415-555-0100,Ana Maria,,c-1b
+44 20 7946 0958,Dee,London,c-4

12345,Eve,,c-5
+1 415 555 0102,Fay,"Sausalito, CA",c-6
"""


def _recipients(app):
    from wsgi import db

    with app.app_context():
        return {r.phone: r for r in db.session.execute(select(Recipient)).scalars()}


def test_import_via_cli(app, runner, actions, tmp_path):
    key = actions.api_key()
    campaign = actions.campaign(key)
    path = tmp_path / "list.csv"
    path.write_text(CSV, encoding="utf-8")
    result = runner.invoke(args=["smstrack", "import-recipients", str(campaign["id"]), str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported 4 recipients; 1 duplicates merged; 2 rows left out." in result.output
    assert "line 4: 'not a number' is not a phone number" in result.output
    assert "line 8: '12345' is not a valid phone number" in result.output
    people = _recipients(app)
    assert sorted(people) == ["+14155550100", "+14155550101", "+14155550102", "+442079460958"]
    ana = people["+14155550100"]
    assert ana.attributes == {"first_name": "Ana Maria", "city": "San Francisco"}
    assert ana.external_id == "c-1b"
    assert people["+14155550102"].attributes["city"] == "Sausalito, CA"
    # The same file again: everything merges, nothing is added.
    again = runner.invoke(args=["smstrack", "import-recipients", str(campaign["id"]), str(path)])
    assert "Imported 0 recipients; 5 duplicates merged; 2 rows left out." in again.output
    assert len(_recipients(app)) == 4


def test_import_via_api(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    response = actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients?region=GB",
        data="mobile;name\n07911 123456;Gil\n07911 123457;Hal\n", content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.json
    assert response.json == {"imported": 2, "merged": 0, "suppressed": 0, "errors": []}
    assert sorted(_recipients(app)) == ["+447911123456", "+447911123457"]
    no_phone = actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data="name\nIvy\n", content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert no_phone.status_code == 400 and "no phone column" in no_phone.json["errors"]["_body"][0]
    other = actions.api_key("other@example.com")
    assert actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign['id']}/recipients", data="phone\n+14155550100\n",
        content_type="text/csv", headers={"Authorization": f"Bearer {other}"},
    ).status_code == 404


def test_unknown_campaign_and_empty_file(runner, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    assert runner.invoke(args=["smstrack", "import-recipients", "99", str(path)]).exit_code == 1


def _import(actions, key, campaign_id, data):
    return actions.client.post(
        f"/smstrack/api/v1/campaigns/{campaign_id}/recipients", data=data, content_type="text/csv",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_broken_rows_are_4xx_or_left_out_naming_their_line(app, actions):
    key = actions.api_key()
    campaign = actions.campaign(key)
    # Lines ended by a bare CR (old Mac files), and a bare CR inside a row: it ends the line.
    mac = _import(actions, key, campaign["id"], "phone,name\r+14155550100,Ana\r+14155550101,Ben\rMaria\r")
    assert mac.status_code == 200, mac.json
    assert mac.json == {"imported": 2, "merged": 0, "suppressed": 0, "errors": [{"line": 4, "message": "'Maria' is not a phone number"}]}
    # A row the CSV reader cannot read stops the import, naming its line.
    huge = _import(actions, key, campaign["id"], "phone,name\n+14155550102,Cy\n+14155550103," + "x" * 200_000 + "\n")
    assert huge.status_code == 400
    assert huge.json["errors"]["_body"][0].startswith("line 3: field larger than field limit")
    # NUL characters: the row is left out, the others are imported.
    nul = _import(actions, key, campaign["id"], "phone,name\n+14155550104,D\x00ee\n+14155550105,Eve\n")
    assert nul.status_code == 200
    assert nul.json["errors"] == [{"line": 2, "message": "the row contains a NUL character"}]
    header = _import(actions, key, campaign["id"], "phone,na\x00me\n+14155550106,Fay\n")
    assert header.status_code == 400 and header.json["errors"]["_body"] == ["line 1: the header contains a NUL character"]
    assert sorted(_recipients(app)) == ["+14155550100", "+14155550101", "+14155550105"]
