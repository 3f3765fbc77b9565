"""Quiet hours in each recipient's local time, ``send --at``, and consent
records: unit tests of the windows, then sends across New York, Los
Angeles, London and Sydney through the fake Twilio API with a simulated
clock (nothing sleeps for real)."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from conftest import Actions
from test_dashboard import csrf_token, login
from e2e.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from flask_smstrack.models import Recipient
from flask_smstrack.sms.quiet import (
    QuietHours, QuietHoursError, is_quiet, next_local, next_open, number_zones, parse_quiet_hours, recipient_zones,
)
from flask_smstrack.sms.schedule import AT_GRACE, Clock, Schedule

UTC = dt.timezone.utc
TCPA = QuietHours(dt.time(21), dt.time(8))
NY, LA, LONDON, SYDNEY = "America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Sydney"

#: Phone -> the zone its message must respect.
PEOPLE = {
    "+12125550100": NY,
    "+12125550101": NY,
    "+12135550100": LA,
    "+13105550100": LA,
    "+442079460000": LONDON,
    "+442079460001": LONDON,
    "+61293744000": SYDNEY,
    "+61298765432": SYDNEY,
}
#: A New York number whose owner lives in Tokyo: the column wins.
TOKYO_PHONE = "+12125550102"


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# -- parsing and windows ---------------------------------------------------


@pytest.mark.parametrize("value,expected", [
    ("21:00-08:00", TCPA),
    ("9:30-17:00", QuietHours(dt.time(9, 30), dt.time(17))),
    (" 22:15 - 07:45 ", QuietHours(dt.time(22, 15), dt.time(7, 45))),
    (None, None),
    ("", None),
])
def test_parse_quiet_hours(value, expected):
    assert parse_quiet_hours(value) == expected


@pytest.mark.parametrize("value", ["21-08", "21:00", "25:00-08:00", "21:00-08:60", "21:00-21:00", "x-y", 2100, True])
def test_bad_quiet_hours_name_the_key(value):
    with pytest.raises(QuietHoursError, match="SMSTRACK_QUIET_HOURS must be local hours as"):
        parse_quiet_hours(value)


def test_window_wraps_midnight_start_included_end_excluded():
    assert [TCPA.covers(dt.time(h, m)) for h, m in [(20, 59), (21, 0), (23, 59), (0, 0), (7, 59), (8, 0), (12, 0)]] == [
        False, True, True, True, True, False, False,
    ]
    day = QuietHours(dt.time(12), dt.time(14))
    assert [day.covers(dt.time(h)) for h in (11, 12, 13, 14)] == [False, True, True, False]


def test_quiet_and_next_open_in_one_zone():
    # 03:00 UTC in July: 23:00 in New York, 20:00 in Los Angeles.
    now = utc(2026, 7, 15, 3)
    assert is_quiet(TCPA, (NY,), now) and not is_quiet(TCPA, (LA,), now)
    assert next_open(TCPA, (NY,), now) == (utc(2026, 7, 15, 12), NY)  # 08:00 EDT
    assert next_open(TCPA, (LA,), now) == (now, None)
    assert not is_quiet(None, (NY,), now)


def test_next_open_across_dst():
    # New York springs forward on 2026-03-08 at 02:00: 08:00 is EDT (UTC-4).
    assert next_open(TCPA, (NY,), utc(2026, 3, 8, 6)) == (utc(2026, 3, 8, 12), NY)
    # ... and falls back on 2026-11-01: 08:00 is EST (UTC-5).
    assert next_open(TCPA, (NY,), utc(2026, 11, 1, 5, 30)) == (utc(2026, 11, 1, 13), NY)
    # London in winter is UTC, Sydney in July is UTC+10.
    assert next_open(TCPA, (LONDON,), utc(2026, 1, 10, 23)) == (utc(2026, 1, 11, 8), LONDON)
    assert next_open(TCPA, (SYDNEY,), utc(2026, 7, 15, 12)) == (utc(2026, 7, 15, 22), SYDNEY)


def test_several_zones_must_all_be_outside_quiet_hours():
    zones = (NY, LA)
    # 12:30 UTC: 08:30 in New York but 05:30 in Los Angeles.
    now = utc(2026, 7, 15, 12, 30)
    assert is_quiet(TCPA, zones, now)
    assert next_open(TCPA, zones, now) == (utc(2026, 7, 15, 15), LA)
    # 00:30 UTC: 17:30 in Los Angeles but 20:30 in New York, then 21:00 there.
    assert not is_quiet(TCPA, zones, utc(2026, 7, 15, 0, 30))
    assert is_quiet(TCPA, zones, utc(2026, 7, 15, 1))
    # Three zones about 8 hours apart: one of them is always in its 11 quiet hours.
    assert next_open(TCPA, (LA, LONDON, "Asia/Shanghai"), utc(2026, 7, 15, 3)) is None


def test_time_zones_of_numbers():
    assert {phone: number_zones(phone) for phone in PEOPLE} == {phone: (z,) for phone, z in PEOPLE.items()}
    # An Australian mobile has no geographic prefix: every zone of the country.
    mobile = number_zones("+61412345678")
    assert SYDNEY in mobile and "Australia/Perth" in mobile and len(mobile) == 8
    # The explicit column wins; an unplaceable number falls back.
    assert recipient_zones("+12125550100", "Asia/Tokyo", "UTC") == ("Asia/Tokyo",)
    assert recipient_zones("+12125550100", None, "UTC") == (NY,)
    assert recipient_zones(None, None, "Europe/Paris") == ("Europe/Paris",)
    assert number_zones("+999") == ()
    assert number_zones.cache_info().hits + number_zones.cache_info().misses > 0


def test_next_local_and_at_schedule():
    assert next_local(dt.time(10, 30), LA, utc(2026, 7, 15, 3)) == utc(2026, 7, 15, 17, 30)
    assert next_local(dt.time(10, 30), SYDNEY, utc(2026, 7, 15, 3)) == utc(2026, 7, 16, 0, 30)
    start = utc(2026, 7, 15, 1)
    schedule = Schedule(TCPA, dt.time(10, 30), start)
    hold = schedule.hold("+13105550100", None, start)
    assert (hold.reason, hold.until, hold.zone) == ("at", utc(2026, 7, 15, 17, 30), LA)
    assert schedule.hold("+13105550100", None, utc(2026, 7, 15, 17, 30)) is None
    # Sydney's 10:30 was 30 minutes before the start: within the grace, now.
    assert AT_GRACE == dt.timedelta(hours=1)
    assert schedule.hold("+61293744000", None, start) is None
    # A number with several zones goes at 10:30 where the clock is furthest behind.
    hold = Schedule(TCPA, dt.time(10, 30), start).hold("+61412345678", None, start)
    assert (hold.until, hold.zone) == (utc(2026, 7, 15, 4), "Indian/Cocos")  # UTC+6:30
    with pytest.raises(QuietHoursError, match=r"22:00 is inside the quiet hours 21:00-08:00 \(SMSTRACK_QUIET_HOURS\)"):
        Schedule(TCPA, dt.time(22), start)


# -- sends with a simulated clock -------------------------------------------


class SimulatedClock(Clock):
    """Time moves only when the send sleeps (for the pace or for quiet hours)."""

    def __init__(self, start: dt.datetime) -> None:
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        return self.time

    def monotonic(self) -> float:
        return self.time.timestamp()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.sleeps.append(seconds)
            self.time += dt.timedelta(seconds=seconds)


@pytest.fixture
def fake(monkeypatch):
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(name, raising=False)
    with FakeTwilio() as fake:
        yield fake


def _app(make_app, fake, clock, **extra):
    app = make_app(**{
        "SMSTRACK_BASE_URL": "https://sms.example.com",
        "SMSTRACK_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "SMSTRACK_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SMSTRACK_TWILIO_FROM": "+15005550006",
        "SMSTRACK_TWILIO_API_URL": fake.url,
        "SMSTRACK_SEND_RATE": 2,
        "SMSTRACK_QUIET_HOURS": "21:00-08:00",
        **extra,
    })
    app.extensions["smstrack_clock"] = clock
    return app


def _campaign(app, csv_text: str) -> tuple[Actions, str, int, dict]:
    actions = Actions(app)
    key = actions.api_key()
    campaign = actions.campaign(key, cost=None, sent=None, message_template="Hi, 20% off today: {link}")
    actions.link(key, campaign["id"])
    imported = actions.api(
        "POST", f"/campaigns/{campaign['id']}/recipients", key, data=csv_text, content_type="text/csv"
    )
    assert imported.status_code == 200, imported.json
    return actions, key, campaign["id"], imported.json


def _people_csv() -> str:
    rows = [f"{phone},\n" for phone in PEOPLE] + [f"{TOKYO_PHONE},asia/tokyo\n"]
    return "phone,timezone\n" + "".join(rows)


def _sent(app, campaign_id) -> dict[str, Recipient]:
    from wsgi import db

    with app.app_context():
        rows = db.session.execute(select(Recipient).where(Recipient.campaign_id == campaign_id)).scalars()
        return {r.phone: r for r in rows if r.message_sid is not None}


def _zone_of(phone: str) -> str:
    return "Asia/Tokyo" if phone == TOKYO_PHONE else PEOPLE[phone]


def _send(app, *args):
    result = app.test_cli_runner().invoke(args=["smstrack", "send", *map(str, args), "--yes"])
    assert result.exit_code == 0, result.output
    return result.output


def test_send_waits_for_each_zone_and_never_sends_in_quiet_hours(make_app, fake):
    # 03:00 UTC in July: 23:00 in New York, 20:00 in Los Angeles, 04:00 in
    # London, 13:00 in Sydney, 12:00 in Tokyo.
    clock = SimulatedClock(utc(2026, 7, 15, 3))
    app = _app(make_app, fake, clock)
    _, _, campaign_id, imported = _campaign(app, _people_csv())
    assert imported["imported"] == 9 and imported["errors"] == []
    output = _send(app, campaign_id)

    sent = _sent(app, campaign_id)
    assert sorted(sent) == sorted([*PEOPLE, TOKYO_PHONE]) and len(fake.creates) == 9
    for phone, person in sent.items():
        local = person.sent_at.astimezone(ZoneInfo(_zone_of(phone)))
        assert not TCPA.covers(local.time()), (phone, local)
    # Each zone went as soon as its window opened: Los Angeles, Sydney and
    # Tokyo at once, London at 08:00 BST (07:00 UTC), New York at 08:00 EDT.
    first = {phone: p.sent_at for phone, p in sent.items()}
    for phone in [*[p for p, z in PEOPLE.items() if z in (LA, SYDNEY)], TOKYO_PHONE]:
        assert first[phone] < utc(2026, 7, 15, 3, 1)
    for phone in [p for p, z in PEOPLE.items() if z == LONDON]:
        assert utc(2026, 7, 15, 7) <= first[phone] < utc(2026, 7, 15, 7, 1)
    for phone in [p for p, z in PEOPLE.items() if z == NY]:
        assert utc(2026, 7, 15, 12) <= first[phone] < utc(2026, 7, 15, 12, 1)
    # Two long sleeps, one per window, and what the user saw before each.
    assert [round(s / 60) for s in clock.sleeps if s > 60] == [4 * 60, 5 * 60]
    assert "4 recipients held; waiting until 2026-07-15 07:00 UTC" in output
    assert "2 held by quiet hours until 08:00 in Europe/London (07:00 UTC)" in output
    assert "2 held by quiet hours until 08:00 in America/New_York (12:00 UTC)" in output
    assert "Sent 9 messages" in output


def test_a_message_that_waits_for_the_pace_into_quiet_hours_waits_for_the_morning(make_app, fake):
    # 20:59:59 in Los Angeles, one message per second: the second one would
    # leave at 21:00:00, so it is given back and goes at 08:00.
    clock = SimulatedClock(utc(2026, 7, 15, 3, 59, 59))
    app = _app(make_app, fake, clock, SMSTRACK_SEND_RATE=1)
    _, _, campaign_id, _ = _campaign(app, "phone\n+12135550100\n+13105550100\n")
    output = _send(app, campaign_id)
    sent = _sent(app, campaign_id)
    assert sent["+12135550100"].sent_at == utc(2026, 7, 15, 3, 59, 59)
    assert sent["+13105550100"].sent_at == utc(2026, 7, 15, 15)
    assert [r.form["To"] for r in fake.creates] == ["+12135550100", "+13105550100"]
    assert "1 held by quiet hours until 08:00 in America/Los_Angeles (15:00 UTC)" in output


def test_skip_quiet_leaves_the_held_ones_ready_then_a_later_run_sends_them(make_app, fake):
    clock = SimulatedClock(utc(2026, 7, 15, 3))
    app = _app(make_app, fake, clock)
    _, _, campaign_id, _ = _campaign(app, _people_csv())
    output = _send(app, campaign_id, "--skip-quiet")
    assert sorted(_sent(app, campaign_id)) == sorted([
        "+12135550100", "+13105550100", "+61293744000", "+61298765432", TOKYO_PHONE,
    ])
    assert clock.sleeps and max(clock.sleeps) < 1  # the pace only
    assert "Sent 5 messages" in output
    assert "4 recipients left ready; run the same command again after 2026-07-15 07:00 UTC:" in output
    assert "  2 held by quiet hours until 08:00 in Europe/London (07:00 UTC)" in output
    assert "  2 held by quiet hours until 08:00 in America/New_York (12:00 UTC)" in output
    from wsgi import db

    with app.app_context():
        statuses = db.session.execute(
            select(Recipient.phone, Recipient.status).where(Recipient.campaign_id == campaign_id)
        ).all()
    assert sorted(p for p, s in statuses if s == "ready") == sorted(p for p, z in PEOPLE.items() if z in (NY, LONDON))

    # Later the same day, in London's window only.
    clock.time = utc(2026, 7, 15, 9)
    output = _send(app, campaign_id, "--skip-quiet")
    assert "Sent 2 messages" in output and "2 recipients left ready" in output
    clock.time = utc(2026, 7, 15, 13)
    assert "Sent 2 messages" in _send(app, campaign_id, "--skip-quiet")
    assert "Nothing to send" in _send(app, campaign_id, "--skip-quiet")
    # Nobody twice.
    assert sorted(r.form["To"] for r in fake.creates) == sorted([*PEOPLE, TOKYO_PHONE])


def test_send_at_a_local_time_in_each_zone(make_app, fake):
    # 20:00 UTC on 14 July: every zone's next 10:30 is ahead.
    clock = SimulatedClock(utc(2026, 7, 14, 20))
    app = _app(make_app, fake, clock)
    _, _, campaign_id, _ = _campaign(app, _people_csv())
    output = _send(app, campaign_id, "--at", "10:30")
    sent = _sent(app, campaign_id)
    assert len(sent) == 9 and len(fake.creates) == 9
    for phone, person in sent.items():
        local = person.sent_at.astimezone(ZoneInfo(_zone_of(phone)))
        assert (local.date(), local.hour, local.minute) == (dt.date(2026, 7, 15), 10, 30), (phone, local)
    assert "9 recipients held; waiting until 2026-07-15 00:30 UTC (about 4 h 30 min):" in output
    assert "  2 scheduled for 10:30 in Australia/Sydney (2026-07-15 00:30 UTC)" in output
    assert "  2 scheduled for 10:30 in America/Los_Angeles (17:30 UTC)" in output


def test_send_at_is_resumable_and_refuses_quiet_hours(make_app, fake):
    clock = SimulatedClock(utc(2026, 7, 15, 9, 45))  # 10:45 in London: its 10:30 is in the grace
    app = _app(make_app, fake, clock)
    _, _, campaign_id, _ = _campaign(app, "phone\n+442079460000\n+442079460001\n+12125550100\n")
    refused = app.test_cli_runner().invoke(args=["smstrack", "send", str(campaign_id), "--at", "22:00", "--yes"])
    assert refused.exit_code == 1
    assert "22:00 is inside the quiet hours 21:00-08:00 (SMSTRACK_QUIET_HOURS): pick a time from 08:00" in (
        refused.output
    )
    bad = app.test_cli_runner().invoke(args=["smstrack", "send", str(campaign_id), "--at", "25:00", "--yes"])
    assert bad.exit_code == 2 and "'25:00' is not a time of day as HH:MM" in bad.output
    assert fake.creates == []

    output = _send(app, campaign_id, "--at", "10:30", "--skip-quiet")
    assert "Sent 2 messages" in output
    assert "1 scheduled for 10:30 in America/New_York (14:30 UTC)" in output
    # Run again: the one left goes at its time, nothing twice.
    _send(app, campaign_id, "--at", "10:30")
    assert sorted(r.form["To"] for r in fake.creates) == ["+12125550100", "+442079460000", "+442079460001"]
    assert _sent(app, campaign_id)["+12125550100"].sent_at.astimezone(ZoneInfo(NY)).strftime("%H:%M") == "10:30"


def test_bad_quiet_hours_setting_is_a_clear_error(make_app, fake):
    app = _app(make_app, fake, SimulatedClock(utc(2026, 7, 15, 3)), SMSTRACK_QUIET_HOURS="9pm-8am")
    _, _, campaign_id, _ = _campaign(app, "phone\n+12125550100\n")
    result = app.test_cli_runner().invoke(args=["smstrack", "send", str(campaign_id), "--yes"])
    assert result.exit_code == 1 and "SMSTRACK_QUIET_HOURS must be local hours as" in result.output
    assert fake.creates == []


# -- import columns and consent ---------------------------------------------


def test_import_reads_timezone_and_consent_columns(make_app, fake):
    app = _app(make_app, fake, SimulatedClock(utc(2026, 7, 15, 15)), SMSTRACK_TIMEZONE="Europe/Paris")
    csv_text = (
        "phone,first_name,timezone,consent_source,consent_at\n"
        "+12125550100,Ana,America/Chicago,checkout form,2026-03-01T14:05:00Z\n"
        "+12125550101,Ben,,paper form,2026-03-01\n"
        "+12125550102,Cy,Mars/Olympus,web,2026-03-01\n"
        "+12125550103,Dee,,web,yesterday\n"
        "+12125550104,Eve,,,2026-03-01T09:00:00-05:00\n"
        "+12125550100,,,,\n"
    )
    _, _, campaign_id, imported = _campaign(app, csv_text)
    assert imported["imported"] == 3 and imported["merged"] == 1
    assert imported["errors"] == [
        {"line": 4, "message": "timezone: 'Mars/Olympus' is not an IANA time zone name such as America/New_York"},
        {"line": 5, "message": "consent_at 'yesterday' is not an ISO 8601 date or date-time such as 2026-03-01"
                               " or 2026-03-01T14:05:00Z"},
    ]
    from wsgi import db

    with app.app_context():
        people = {r.phone: r for r in db.session.execute(select(Recipient)).scalars()}
    ana, ben, eve = people["+12125550100"], people["+12125550101"], people["+12125550104"]
    assert (ana.timezone, ana.consent_source) == ("America/Chicago", "checkout form")
    assert ana.consent_at == utc(2026, 3, 1, 14, 5)
    assert ana.attributes == {"first_name": "Ana"}
    # A date alone is its midnight in SMSTRACK_TIMEZONE (Paris, UTC+1 in March).
    assert (ben.timezone, ben.consent_source, ben.consent_at) == (None, "paper form", utc(2026, 2, 28, 23))
    assert (eve.consent_source, eve.consent_at) == (None, utc(2026, 3, 1, 14))


def test_require_consent_leaves_out_recipients_without_a_record(make_app, fake):
    clock = SimulatedClock(utc(2026, 7, 15, 15))  # 11:00 in New York
    app = _app(make_app, fake, clock)
    csv_text = (
        "phone,consent_source,consent_at\n"
        "+12125550100,checkout,2026-03-01\n"
        "+12125550101,,\n"
        "+12125550102,checkout,\n"
        "+12125550103,,2026-03-01\n"
    )
    actions, key, campaign_id, _ = _campaign(app, csv_text)
    # Prepared before consent was required: all four are ready.
    prepared = actions.api("POST", f"/campaigns/{campaign_id}/messages/prepare", key)
    assert (prepared.json["prepared"], prepared.json["no_consent"], prepared.json["ready"]) == (4, 0, 4)

    app.config["SMSTRACK_REQUIRE_CONSENT"] = True
    prepared = actions.api("POST", f"/campaigns/{campaign_id}/messages/prepare", key)
    assert (prepared.json["prepared"], prepared.json["no_consent"], prepared.json["ready"]) == (1, 3, 1)
    cli = app.test_cli_runner().invoke(args=["smstrack", "export-messages", str(campaign_id), "-o", "-"])
    assert "3 recipients have no consent record and were left out: import consent_source and consent_at." in cli.output
    assert cli.output.count("+1212555010") == 1  # only the one with consent, and not marked exported
    from wsgi import db

    with app.app_context():
        db.session.execute(Recipient.__table__.update().values(status="ready").where(Recipient.phone == "+12125550100"))
        db.session.commit()
    output = _send(app, campaign_id)
    assert "Sent 1 message" in output
    assert "3 recipients have no consent record and were left out: import consent_source and consent_at." in output
    assert [r.form["To"] for r in fake.creates] == ["+12125550100"]

    # The dashboard says the same.
    client = login(app, password="correct horse")
    token = csrf_token(client, f"/smstrack/campaigns/{campaign_id}")
    page = client.post(
        f"/smstrack/campaigns/{campaign_id}/messages/prepare", data={"csrf_token": token}, follow_redirects=True
    )
    assert "3 recipients have no consent record and were left out: import consent_source and consent_at." in page.text

    # An import that brings the record lets them in; without the setting nothing changes.
    actions.api("POST", f"/campaigns/{campaign_id}/recipients", key, content_type="text/csv",
                data="phone,consent_source,consent_at\n+12125550101,shop,2026-05-01T10:00\n")
    prepared = actions.api("POST", f"/campaigns/{campaign_id}/messages/prepare", key)
    assert (prepared.json["prepared"], prepared.json["no_consent"]) == (1, 2)
    app.config["SMSTRACK_REQUIRE_CONSENT"] = False
    prepared = actions.api("POST", f"/campaigns/{campaign_id}/messages/prepare", key)
    assert (prepared.json["prepared"], prepared.json["no_consent"]) == (3, 0)
