import datetime as dt
import html
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import iptocc
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from flask_smstrack.auth import find_user
from flask_smstrack.demo import ab_test as demo_sms
from flask_smstrack.demo import ab_traffic, agents, common
from flask_smstrack.demo import spring_sale as demo
from flask_smstrack.models import (
    Campaign,
    Click,
    Conversion,
    Link,
    Recipient,
    RollupState,
    Variant,
    utcnow,
)
from flask_smstrack.reports.campaign import CampaignData, campaign_report
from flask_smstrack.reports.tables import variant_test
from flask_smstrack.schemas import format_money
from flask_smstrack.state import get_state
from flask_smstrack.tracking.classify import classify_agent
from flask_smstrack.tracking.clicks import click_id_millis
from test_dashboard import login

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _run(runner, *args):
    """The Spring sale demo alone (the A/B test demo is tested below)."""
    return runner.invoke(args=["smstrack", "demo", "--no-sms", *args])


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
    # What SMS campaigns see: CTR 5-20%, conversion 1-8%, and a return of a
    # few times the cost, not a hundred.
    assert 0.01 < report["conversion_rate"] < 0.08
    assert (report["sent"], report["cost"]) == (14000, "420.00")
    assert 0.05 < report["ctr"] < 0.20
    assert 0.5 < report["roi"] < 10
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
        assert times[-1] <= campaign.sent_at + common.HORIZON
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
        ([ua for _, ua, _ in agents.HUMAN_AGENTS], "human"),
        ([ua for _, ua in agents.PREVIEW_AGENTS], "preview"),
        ([ua for _, ua, _, _ in agents.BOT_AGENTS], "bot"),
    ],
)
def test_agents_classify_as_their_kind(agents, kind):
    assert {classify_agent(ua).kind for ua in agents} == {kind}


def test_networks_belong_to_their_countries():
    for country, _, _, prefixes in agents.COUNTRIES:
        for prefix in prefixes:
            sample = f"{prefix}:1234::" if ":" in prefix else f"{prefix}.200.0"
            assert iptocc.country_code(sample) == country, prefix
    for _, _, prefix, country in agents.BOT_AGENTS:
        sample = f"{prefix}.7" if prefix.count(".") == 2 else f"{prefix}.7.0"
        assert iptocc.country_code(sample) == country, prefix


# -- the A/B test demo: imported recipients, variants, receipts, forwards ------


def _sms_campaign_id(output: str) -> int:
    return int(re.search(r"^Campaign (\d+) created: Demo: A/B test \(SMS\)", output, re.M).group(1))


def test_demo_command_makes_an_ab_test(app, runner, actions):
    key = actions.api_key("admin@example.com", admin=True)
    result = runner.invoke(args=["smstrack", "demo", "--clicks", "300", "--seed", "8"])
    assert result.exit_code == 0, result.output
    spring_id, campaign_id = _campaign_id(result.output), _sms_campaign_id(result.output)
    assert spring_id < campaign_id
    assert f"/smstrack/campaigns/{campaign_id}" in result.output

    n = demo_sms.RECIPIENTS
    report = actions.report(key, campaign_id)
    assert (report["sent"], report["segments"], report["cost"]) == (n, n, "60.00")
    assert 0.93 * n < report["delivered"] < 0.97 * n
    assert 0.015 * n < report["undelivered"] < 0.05 * n
    no_receipt = n - report["delivered"] - report["undelivered"]
    assert 0.005 * n < no_receipt < 0.04 * n
    assert 0.095 < report["ctr"] < 0.135
    assert report["forwards"] > 0 and report["previews"] > 0 and report["bots"] == 0
    assert report["unique_clicks"] < report["clicks"] < 1.3 * report["unique_clicks"]
    assert 0.01 < report["conversion_rate"] < 0.12
    assert 0 < report["roi"] < 30
    assert f"{report['delivered']} delivered, {report['undelivered']} undelivered, {no_receipt} without a receipt" in result.output
    assert f"{report['clicks']} human ({report['unique_clicks']} unique), {report['forwards']} forwards" in result.output
    assert "A/B test:    B beats A on CTR: " in result.output

    with app.app_context():
        session = _session()
        campaign = session.get(Campaign, campaign_id)
        assert campaign.owner_id == str(find_user("admin@example.com").id) and campaign.status == "sent"
        assert campaign.sent_at == session.get(Campaign, spring_id).sent_at
        assert (campaign.currency, campaign.cost_per_segment) == ("USD", Decimal("0.0300"))
        assert app.config["SMSTRACK_BASE_URL"] is None  # set for the messages only
        [link] = campaign.links
        assert link.destination_url == "https://shop.example.com/spring" and link.utm["utm_source"] == "sms"
        variants = {v.id: v for v in campaign.variants}
        assert [(v.name, v.weight) for v in variants.values()] == [("A", 1), ("B", 1)]

        # The test: B's CTR is higher, and the verdict says so.
        test = variant_test(CampaignData(campaign))
        a, b = test.rows
        assert (a["messages"], b["messages"]) == (n // 2, n // 2)
        assert 0.08 < a["ctr"] < 0.10 and 0.13 < b["ctr"] < 0.15
        assert test.notes[0].startswith("B beats A on CTR: ")

        # Recipients: imported, each with a message, a MessageSid and a receipt (or not).
        recipients = {r.id: r for r in session.execute(select(Recipient).where(Recipient.campaign_id == campaign_id)).scalars()}
        assert len(recipients) == n
        sids = [r.message_sid for r in recipients.values()]
        assert len(set(sids)) == n and all(re.fullmatch(r"SM[0-9a-f]{32}", sid) for sid in sids)
        by_status = {}
        for r in recipients.values():
            by_status.setdefault(r.status, []).append(r)
            assert re.fullmatch(r"\+1\d{3}55501\d\d", r.phone) and set(r.attributes) == {"first_name", "city"}
            assert r.message.startswith((f"Hi {r.attributes['first_name']}, ", f"{r.attributes['first_name']}: "))
            assert r.variant_id in variants and r.segments == 1
            assert dt.timedelta(0) <= r.sent_at - campaign.sent_at <= dt.timedelta(seconds=ab_traffic.SEND_SECONDS)
            assert r.sent_at <= r.status_at <= r.sent_at + dt.timedelta(minutes=15)
            assert (r.error_code in ("30003", "30005")) == (r.status == "undelivered")
        assert {s: len(rs) for s, rs in by_status.items()} == {
            "delivered": report["delivered"], "undelivered": report["undelivered"], "sent": no_receipt,
        }

        # Each recipient's own link, for the campaign link, in their message.
        own = session.execute(select(Link).where(Link.campaign_id == campaign_id, Link.recipient_id.is_not(None))).scalars().all()
        assert len(own) == n and {own_link.recipient_id for own_link in own} == set(recipients)
        for own_link in own:
            r = recipients[own_link.recipient_id]
            assert own_link.parent_id == link.id and own_link.variant_id == r.variant_id
            assert r.message.endswith(f" http://127.0.0.1:8000/s/{own_link.code} Reply STOP to opt out")

        # Clicks, as the redirect records clicks on recipients' own links.
        clicks = session.execute(select(Click).where(Click.campaign_id == campaign_id).order_by(Click.id)).scalars().all()
        assert [c.created_at for c in clicks] == sorted(c.created_at for c in clicks)
        firsts = {}
        for c in clicks:
            r = recipients[c.recipient_id]
            assert (c.link_id, c.variant_id, c.source) == (link.id, r.variant_id, None)
            assert click_id_millis(c.click_id) == _millis(c.created_at)
            assert campaign.sent_at < c.created_at <= campaign.sent_at + common.HORIZON
            assert c.ip.endswith((".0", "::")) and iptocc.country_code(c.ip) == c.country
            if c.is_first:
                assert c.kind == "human" and c.visitor_id is None and c.recipient_id not in firsts
                assert r.status != "undelivered" and c.created_at > r.status_at and c.country == "US"
                firsts[c.recipient_id] = c
        assert len(firsts) == report["unique_clicks"]
        human = [c for c in clicks if c.kind == "human"]
        assert {c.device_type for c in human} == {"mobile", "desktop"} and {c.os for c in human} >= {"iOS", "Android"}
        for c in clicks:
            first = firsts.get(c.recipient_id)
            if c.kind == "human" and not c.is_first:  # back on the same device
                assert c.visitor_id == first.click_id and c.created_at > first.created_at
                assert (c.device_type, c.os, c.browser, c.ip) == (first.device_type, first.os, first.browser, first.ip)
            elif c.kind == "forward":  # passed on: another device
                assert not c.is_first and c.visitor_id is None and c.created_at > first.created_at
                assert (c.device_type, c.os, c.browser, c.ip) != (first.device_type, first.os, first.browser, first.ip)
            elif c.kind == "preview":  # iMessage, as the message arrives
                r = recipients[c.recipient_id]
                assert r.status == "delivered" and c.browser == "Facebook / iMessage preview" and not c.is_first
                assert r.status_at < c.created_at < r.status_at + dt.timedelta(seconds=5)
        assert {c.kind for c in clicks} == {"human", "preview", "forward"}
        assert sum(c.country == "US" for c in clicks) > 0.95 * len(clicks)

        # Conversions follow confirmed human clicks, and carry their ids.
        conversions = session.execute(select(Conversion).where(Conversion.campaign_id == campaign_id)).scalars().all()
        assert len(conversions) == report["conversions"]
        orders = [v.order_id for v in conversions]
        assert len(set(orders)) == len(orders) and all(o.startswith(f"DEMO-{campaign_id}-") for o in orders)
        for v in conversions:
            click = session.get(Click, v.click_pk)
            assert click.kind == "human" and click.human_confirmed and click.click_id == v.reported_click_id
            assert (v.link_id, v.recipient_id, v.variant_id) == (click.link_id, click.recipient_id, click.variant_id)
            assert (v.event, v.currency) == ("purchase", "USD") and isinstance(v.revenue, Decimal)
            assert click.created_at < v.created_at
        revenue = sum((v.revenue for v in conversions), Decimal(0))
        assert report["revenue"] == {"USD": format_money(revenue)}
        assert f"conversions: {len(conversions)}, revenue {format_money(revenue)} USD" in result.output


def _ab_numbers(campaign: Campaign):
    data = CampaignData(campaign)
    report = {k: v for k, v in data.report.as_dict().items() if k != "campaign_id"}
    test = variant_test(data)
    return report, test.rows, test.notes


def test_ab_demo_same_seed_same_numbers(app):
    now = dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.timezone.utc)
    with app.app_context():
        # Owners of their own: a number that replied STOP to one demo is
        # left out of its owner's next campaigns.
        first, second, other = (
            demo_sms.create_demo_sms_campaign(seed=s, now=now, owner_id=owner)
            for s, owner in ((21, "1"), (21, "2"), (22, "3"))
        )
        assert len({first.id, second.id, other.id}) == 3
        assert first.sent_at == dt.datetime(2025, 2, 25, 15, 0, tzinfo=dt.timezone.utc)  # 10:00 EST
        numbers = _ab_numbers(first)
        assert numbers == _ab_numbers(second)
        assert numbers != _ab_numbers(other)
        assert numbers[2][0].startswith("B beats A on CTR: ")
        # Some recipients replied STOP, a few more to the urgent variant B.
        report = numbers[0]
        assert 0 < report["opt_outs"] < 0.03 * demo_sms.RECIPIENTS
        assert report["opt_out_rate"] == round(report["opt_outs"] / report["delivered"], 6)
        # The same phones in each campaign, and no MessageSid twice.
        assert _count(Recipient) == 3 * demo_sms.RECIPIENTS
        assert _session().execute(select(func.count(func.distinct(Recipient.message_sid)))).scalar_one() == _count(Recipient)
        # The first owner's next demo leaves out the numbers that opted out.
        again = demo_sms.create_demo_sms_campaign(seed=21, now=now, owner_id="1")
        statuses = _session().execute(
            select(Recipient.status, func.count()).where(Recipient.campaign_id == again.id).group_by(Recipient.status)
        ).all()
        assert dict(statuses)["suppressed"] == report["opt_outs"]
        assert campaign_report(again).sent == demo_sms.RECIPIENTS - report["opt_outs"]


def test_ab_demo_leaves_no_rollups_and_uses_the_base_url(make_app):
    app = make_app(SMSTRACK_BASE_URL="https://sms.example.com")
    with app.app_context():
        campaign = demo_sms.create_demo_sms_campaign(recipients=150, seed=4)
        assert _count(RollupState) == 0
        messages = _session().execute(select(Recipient.message)).scalars().all()
        assert len(messages) == 150 and all(" https://sms.example.com/s/" in m for m in messages)
        assert campaign_report(campaign).sent == 150
        assert app.config["SMSTRACK_BASE_URL"] == "https://sms.example.com"
    with pytest.raises(ValueError, match="recipients must be between 1 and 2000"):
        demo_sms.create_demo_sms_campaign(recipients=2001)


@pytest.mark.parametrize("stage", ["messages", "clicks"])
def test_ab_demo_failure_leaves_nothing_behind(app, monkeypatch, stage):
    n = demo_sms.RECIPIENTS
    if stage == "messages":
        progress = None
        prepare = demo_sms.prepare_messages

        def prepare_then_fail(campaign, progress=None):
            prepare(campaign, progress=progress)
            assert _count(Link) == 3 + 1 + n
            raise RuntimeError("disk full")

        monkeypatch.setattr(demo_sms, "prepare_messages", prepare_then_fail)
        error = RuntimeError
    else:
        done = []

        def progress(count):
            done.append(count)
            if sum(done) == n * demo_sms.STEPS_PER_RECIPIENT:
                # Ctrl-C with the send, the clicks and the conversions written.
                assert _count(Click) > 50 and _count(Conversion) > 0
                raise KeyboardInterrupt

        error = KeyboardInterrupt
    with app.app_context():
        # Another campaign is left as it is.
        spring = demo.create_demo_campaign(clicks=50, seed=1)
        before = {model: _count(model) for model in (Campaign, Link, Click, Conversion)}
        with pytest.raises(error):
            demo_sms.create_demo_sms_campaign(seed=3, progress=progress)
        assert {model: _count(model) for model in before} == before
        for model in (Recipient, Variant, RollupState):
            assert _count(model) == 0
        assert _session().execute(select(Campaign.id)).scalars().all() == [spring.id]
        assert app.config["SMSTRACK_BASE_URL"] is None


def test_ab_demo_on_the_dashboard(app, runner, actions):
    actions.user("admin@example.com", admin=True)
    result = runner.invoke(args=["smstrack", "demo", "--clicks", "100", "--seed", "5"])
    assert result.exit_code == 0, result.output
    campaign_id = _sms_campaign_id(result.output)
    with app.app_context():
        campaign = _session().get(Campaign, campaign_id)
        report = campaign_report(campaign)
        verdict = variant_test(CampaignData(campaign)).notes[0]

    client = login(app, "admin@example.com")
    page = client.get(f"/smstrack/campaigns/{campaign_id}")
    assert page.status_code == 200
    card = re.search(r'<section class="st-card" id="messages".*?</section>', page.text, re.S).group(0)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", card)).split())
    assert "2,000 recipients." in text
    statuses = dict(re.findall(r'data-status="(\w+)">.*?<strong class="st-status-count">([^<]+)</strong>', card))
    assert statuses["delivered"] == f"{report.delivered:,}" and statuses["pending"] == "0"
    assert int(statuses["undelivered"]) == report.undelivered and int(statuses["sent"]) > 0
    assert f"Forwards {report.forwards}" in text and "Cost 60.00 USD" in text
    called = re.findall(r'<p class="st-verdict st-verdict-called">(.*?)</p>', card, re.S)
    assert html.unescape(called[0]) == verdict and verdict.startswith("B beats A on CTR: ")
    assert "Variant A" in text and "Variant B" in text

    listed = client.get("/smstrack/").text
    assert "Demo: A/B test (SMS)" in listed and "Demo: Spring sale" in listed
