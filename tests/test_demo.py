import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import iptocc
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from flask_smstrack.tracking import click_id_millis

from flask_smstrack import demo
from flask_smstrack.auth import find_user
from flask_smstrack.classify import classify_agent
from flask_smstrack.models import Campaign, Click, Conversion, Link, RollupState, utcnow
from flask_smstrack.reports import campaign_report
from flask_smstrack.schemas import format_money
from flask_smstrack.state import get_state

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _run(runner, *args):
    return runner.invoke(args=["smstrack", "demo", *args])


def _campaign_id(output: str) -> int:
    return int(re.search(r"^Campaign (\d+) created: Demo: Spring sale", output, re.M).group(1))


def _session():
    return get_state().db.session


def _millis(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(milliseconds=1)


def test_demo_command_fills_a_campaign(app, runner, actions):
    key = actions.api_key("admin@example.com", admin=True)
    n = 2000
    result = _run(runner, "--clicks", str(n), "--seed", "3")
    assert result.exit_code == 0, result.output
    campaign_id = _campaign_id(result.output)
    assert f"/smstrack/campaigns/{campaign_id}" in result.output

    report = actions.report(key, campaign_id)
    assert report["clicks"] + report["previews"] + report["bots"] == n
    assert 0.04 * n < report["previews"] < 0.12 * n
    assert 0.01 * n < report["bots"] < 0.06 * n
    assert 0.84 * n < report["clicks"] < 0.94 * n
    assert 0.75 * report["clicks"] < report["unique_clicks"] < report["clicks"]
    assert 0.45 * report["clicks"] < report["human_confirmed"] < 0.75 * report["clicks"]
    assert report["conversions"] > 0
    assert 0.02 < report["conversion_rate"] < 0.10
    assert (report["sent"], report["cost"]) == (20000, "158.00")
    assert f"{report['clicks']} human" in result.output and f"conversions: {report['conversions']}" in result.output

    with app.app_context():
        session = _session()
        campaign = session.get(Campaign, campaign_id)
        assert campaign.owner_id == str(find_user("admin@example.com").id) and campaign.status == "sent"
        # A Tuesday, 10:00 in New York, a week or two ago.
        local = campaign.sent_at.astimezone(ZoneInfo("America/New_York"))
        assert (local.weekday(), local.hour, local.minute) == (1, 10, 0)
        assert dt.timedelta(days=7) <= utcnow() - campaign.sent_at < dt.timedelta(days=14)

        links = session.execute(select(Link).where(Link.campaign_id == campaign_id).order_by(Link.id)).scalars().all()
        assert [link.destination_url.rsplit("/", 1)[1] for link in links] == ["spring", "shoes", "faq"]
        assert all(link.utm["utm_source"] == "sms" and re.fullmatch(r"[0-9A-Za-z]{8}", link.code) for link in links)

        # Revenue in the report is the sum of the stored conversions.
        revenues = session.execute(
            select(Conversion.revenue).where(Conversion.campaign_id == campaign_id)
        ).scalars().all()
        assert len(revenues) == report["conversions"]
        assert report["revenue"] == {"USD": format_money(sum(revenues, Decimal(0)))}
        assert f"revenue {report['revenue']['USD']} USD" in result.output
        assert all(Decimal("19.00") <= r <= Decimal("180.00") and r == r.quantize(Decimal("0.01")) for r in revenues)

        clicks = session.execute(
            select(Click).where(Click.campaign_id == campaign_id).order_by(Click.id)
        ).scalars().all()
        assert len(clicks) == n
        by_id = {c.click_id: c for c in clicks}
        assert len(by_id) == n
        times = [c.created_at for c in clicks]
        assert all(t > campaign.sent_at for t in times)
        assert times == sorted(times)
        assert times[-1] <= campaign.sent_at + demo.HORIZON
        for c in clicks:
            # The click id carries the click's own time, like new_click_id's.
            assert len(c.click_id) == 29
            assert click_id_millis(c.click_id) == _millis(c.created_at)
            # The IP is anonymized and belongs to the country it is counted in.
            assert c.ip.endswith((".0", "::")) and iptocc.country_code(c.ip) == c.country
            if c.kind == "human":
                assert c.device_type in ("mobile", "tablet", "desktop") and c.os and c.browser
            else:
                assert (c.device_type, c.os, c.is_first, c.human_confirmed, c.visitor_id) == (None, None, False, False, None)

        human = [c for c in clicks if c.kind == "human"]
        assert sum(c.device_type == "mobile" for c in human) / len(human) > 0.65
        assert {c.os for c in human} >= {"iOS", "Android", "Windows", "Mac OS X"}
        assert {c.country for c in human} >= {"US", "GB", "CA", "DE"}
        assert 0 < sum(c.referrer_host == "l.instagram.com" for c in human) < 0.1 * len(human)
        previews = [c for c in clicks if c.kind == "preview"]
        assert {"Facebook / iMessage preview", "WhatsApp / Signal preview"} <= {c.browser for c in previews}
        assert sum(c.created_at - campaign.sent_at < dt.timedelta(minutes=5) for c in previews) > 0.7 * len(previews)

        # Returning visitors: not first, tied to an earlier first click on the same link.
        repeats = [c for c in human if c.visitor_id is not None]
        assert repeats and len(repeats) == len(human) - report["unique_clicks"]
        for c in repeats:
            first = by_id[c.visitor_id]
            assert not c.is_first and first.is_first and first.visitor_id is None
            assert (first.link_id, first.kind, first.os, first.browser) == (c.link_id, "human", c.os, c.browser)
            assert first.created_at < c.created_at
        assert all(c.is_first for c in human if c.visitor_id is None)

        # Conversions follow human, confirmed clicks.
        conversions = session.execute(select(Conversion)).scalars().all()
        orders = [v.order_id for v in conversions]
        assert len(set(orders)) == len(orders)
        attributed = [v for v in conversions if v.campaign_id == campaign_id]
        for v in attributed:
            click = session.get(Click, v.click_pk)
            assert click.kind == "human" and click.human_confirmed and click.click_id == v.reported_click_id
            assert click.link_id == v.link_id
            assert click.created_at < v.created_at <= click.created_at + dt.timedelta(days=2)
            assert (v.event, v.currency) == ("purchase", "USD")
            assert (v.source, v.trust) in {("snippet", "unverified"), ("server", "verified")}
        assert {v.source for v in attributed} == {"snippet", "server"}
        unattributed = [v for v in conversions if v.campaign_id is None]
        assert unattributed
        for v in unattributed:
            assert v.click_pk is None and v.reported_click_id and v.reported_click_id not in by_id
        assert report["unattributed_conversions"] == 0  # their ids match no click


def _data(campaign_id):
    """What the demo made, relative to its send time and without ids."""
    session = _session()
    campaign = session.get(Campaign, campaign_id)
    links = {link.id: i for i, link in enumerate(campaign.links)}
    clicks = [
        (c.created_at - campaign.sent_at, links[c.link_id], c.kind, c.is_first, c.human_confirmed,
         c.visitor_id is None, c.device_type, c.os, c.browser, c.country, c.ip, c.referrer_host)
        for c in session.execute(select(Click).where(Click.campaign_id == campaign_id).order_by(Click.id)).scalars()
    ]
    conversions = [
        (v.created_at - campaign.sent_at, v.revenue, v.source)
        for v in session.execute(
            select(Conversion).where(Conversion.campaign_id == campaign_id).order_by(Conversion.id)
        ).scalars()
    ]
    return clicks, conversions


def test_same_seed_same_data(app, runner):
    outputs = [_run(runner, "--clicks", "700", "--seed", "11") for _ in range(2)]
    assert [r.exit_code for r in outputs] == [0, 0], outputs[1].output
    first, second = (_campaign_id(r.output) for r in outputs)
    assert first != second
    # The same numbers, printed the same way.
    assert outputs[0].output.splitlines()[-3:-1] == outputs[1].output.splitlines()[-3:-1]
    other = _run(runner, "--clicks", "700", "--seed", "12")
    assert other.exit_code == 0
    with app.app_context():
        assert _data(first) == _data(second)
        assert _data(first) != _data(_campaign_id(other.output))
        # Ids are new on each run: the same seed twice does not collide.
        assert _count(Click) == 2100
        # No user at all: the campaign has no owner.
        assert _session().get(Campaign, first).owner_id is None


def test_same_seed_same_data_in_any_week(app):
    winter = dt.datetime(2025, 1, 13, 18, 0, tzinfo=dt.timezone.utc)
    summer = dt.datetime(2025, 7, 14, 3, 0, tzinfo=dt.timezone.utc)
    with app.app_context():
        ids = [demo.create_demo_campaign(clicks=400, seed=9, now=now).id for now in (winter, summer)]
        sent = [_session().get(Campaign, i).sent_at for i in ids]
        # 10:00 in New York: EST in January, EDT in July.
        assert sent == [
            dt.datetime(2024, 12, 31, 15, 0, tzinfo=dt.timezone.utc),
            dt.datetime(2025, 7, 1, 14, 0, tzinfo=dt.timezone.utc),
        ]
        assert _data(ids[0]) == _data(ids[1])


def _count(model) -> int:
    return _session().execute(select(func.count()).select_from(model)).scalar_one()


def test_owner(app, runner, actions):
    actions.user("admin@example.com", admin=True)
    owner_id = actions.user("shop@example.com")
    result = _run(runner, "--clicks", "50", "--owner", "Shop@Example.com")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert _session().get(Campaign, _campaign_id(result.output)).owner_id == str(owner_id)
    assert re.search(r"\(seed \d+\)", result.output)

    unknown = _run(runner, "--clicks", "50", "--owner", "nobody@example.com")
    assert unknown.exit_code != 0
    assert "no user nobody@example.com" in unknown.output
    assert _run(runner, "--clicks", "0").exit_code != 0
    with app.app_context():
        assert _count(Campaign) == 1


def test_batches_and_progress(app):
    now = dt.datetime(2024, 6, 3, 12, 0, tzinfo=dt.timezone.utc)  # a Monday
    done = []
    with app.app_context():
        campaign = demo.create_demo_campaign(clicks=1000, seed=5, now=now, progress=done.append, batch_size=150)
        assert done == [150] * 6 + [100]
        assert campaign.sent_at == dt.datetime(2024, 5, 21, 14, 0, tzinfo=dt.timezone.utc)  # 10:00 EDT
        assert _count(Click) == 1000
        latest = _session().execute(select(func.max(Conversion.created_at))).scalar_one()
        assert latest <= now
        # Returning visitors whose first click was in an earlier batch.
        assert any(first < repeat - 150 for first, repeat in _visitor_pairs(campaign.id))


def _visitor_pairs(campaign_id: int) -> list[tuple[int, int]]:
    """(first click, returning click) primary keys."""
    first = aliased(Click)
    return _session().execute(
        select(first.id, Click.id)
        .join(first, first.click_id == Click.visitor_id)
        .where(Click.campaign_id == campaign_id)
    ).all()


def test_reports_read_during_generation_do_not_lose_rows(app, actions):
    key = actions.api_key("admin@example.com", admin=True)
    seen = []

    def look(count):
        # The dashboard is open while the demo is written.
        campaign = _session().execute(select(Campaign).order_by(Campaign.id.desc())).scalars().first()
        seen.append(campaign_report(campaign).clicks)

    with app.app_context():
        campaign_id = demo.create_demo_campaign(clicks=900, seed=2, progress=look, batch_size=300).id
    assert len(seen) == 3
    report = actions.report(key, campaign_id)
    assert report["clicks"] + report["previews"] + report["bots"] == 900


def test_failure_leaves_nothing_behind(app):
    def interrupt(count):
        campaign_report(_session().execute(select(Campaign)).scalar_one())
        raise KeyboardInterrupt

    with app.app_context():
        with pytest.raises(KeyboardInterrupt):
            demo.create_demo_campaign(clicks=600, seed=1, progress=interrupt, batch_size=200)
        for model in (Campaign, Link, Click, Conversion, RollupState):
            assert _count(model) == 0


@pytest.mark.parametrize(
    ("agents", "kind"),
    [
        ([ua for _, ua, _ in demo._HUMAN_AGENTS], "human"),
        ([ua for _, ua in demo._PREVIEW_AGENTS], "preview"),
        ([ua for _, ua, _, _ in demo._BOT_AGENTS], "bot"),
    ],
)
def test_agents_classify_as_their_kind(agents, kind):
    assert {classify_agent(ua).kind for ua in agents} == {kind}


def test_networks_belong_to_their_countries():
    for country, _, _, prefixes in demo._COUNTRIES:
        for prefix in prefixes:
            sample = f"{prefix}:1234::" if ":" in prefix else f"{prefix}.200.0"
            assert iptocc.country_code(sample) == country, prefix
    for _, _, prefix, country in demo._BOT_AGENTS:
        sample = f"{prefix}.7" if prefix.count(".") == 2 else f"{prefix}.7.0"
        assert iptocc.country_code(sample) == country, prefix
