"""The Messages card of a campaign page: statuses, segments and cost,
preparing messages, the A/B test, and the messages and recipients CSVs."""
from __future__ import annotations

from typing import Any

from flask import (
    flash,
    redirect,
    request,
    url_for,
)
from flask_login import login_required
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ...errors import InvalidInput
from ...models import Campaign
from ...reports.campaign import CampaignData, CampaignReport
from ...reports.export import csv_download
from ...reports.rollups import start_catch_up
from ...schemas import (
    format_money,
)
from .base import bp, campaign_or_404, plural
from .charts import variant_bars

#: A recipient's status on the Messages card, in the order a message moves,
#: with what it means.
RECIPIENT_STATUSES = {
    "pending": ("Pending", "imported, no message yet"),
    "ready": ("Ready", "message written, not sent yet"),
    "suppressed": ("Opted out", "the number is on the opt-out list: not texted"),
    "exported": ("Exported", "downloaded for another SMS platform: counted as sent"),
    "sending": ("Sending", "handed to the provider"),
    "queued": ("Queued", "waiting at the provider"),
    "sent": ("Sent", "on its way, no delivery receipt yet"),
    "delivered": ("Delivered", "the phone received it"),
    "undelivered": ("Undelivered", "the carrier could not deliver it"),
    "failed": ("Failed", "the provider could not send it"),
}


#: The audiences for the next send (:data:`.schemas.AUDIENCE_SEGMENTS`) in
#: the order the page offers them: label, and what to send them.
AUDIENCE_LABELS = {
    "clicked_not_converted": ("Clicked, did not convert", "a reminder, or a better offer"),
    "not_clicked": ("Did not click", "another message"),
    "converted": ("Converted", "a thank-you, or the next product"),
    "clicked": ("Clicked", "everyone who tapped a link"),
    "all": ("Everyone", "everyone the message went to"),
}


class PrepareForm(FlaskForm):
    """CSRF only: "Prepare messages" and "Export messages" have no fields."""


def _cost_note(campaign: Campaign, report: CampaignReport) -> str:
    """How the cost on the Messages card was reached."""
    cur = campaign.currency
    if campaign.cost is not None:
        return "the flat cost set in Edit"
    if campaign.cost_per_segment is not None:
        price = f"{format_money(campaign.cost_per_segment)} {cur}"
        if report.segments is None:
            return f"{price} per segment, once messages are written"
        return f"{plural(report.segments, 'segment')} × {price}"
    if campaign.cost_per_message is not None:
        price = f"{format_money(campaign.cost_per_message)} {cur}"
        return f"{plural(report.sent, 'message')} × {price}" if report.sent is not None else f"{price} per message"
    return "set a price per segment in Edit"


def _ctr_note(report: CampaignReport, messages: int, receipts: int) -> str:
    """Which count CTR divides by, in words."""
    if receipts:
        return (
            f"CTR = unique clicks ÷ reached ({report.reached:,}: sent minus undelivered): "
            f"delivery receipts came for {receipts:,} of {plural(messages, 'message')}, "
            f"{report.delivered:,} delivered and {report.undelivered:,} not."
        )
    if messages:
        return f"CTR = unique clicks ÷ sent ({messages:,}) until delivery receipts arrive, then ÷ reached (sent minus undelivered)."
    if report.delivered is not None:
        return f"CTR = unique clicks ÷ delivered ({report.delivered:,}) as entered in Edit, until messages are written here."
    if report.sent is not None:
        return f"CTR = unique clicks ÷ sent ({report.sent:,}) as entered in Edit, until messages are written here."
    return "CTR = unique clicks ÷ sent, once messages are written (÷ reached, sent minus undelivered, once delivery receipts arrive)."


def messages_card(data: CampaignData) -> dict[str, Any] | None:
    """What the campaign page's Messages card shows: recipients per status,
    messages, segments and cost, forwards, and the A/B test; ``None`` for a
    campaign without imported recipients or variants."""
    from ...reports.tables import variant_test
    from ...sms.outbox import ready_counts

    campaign = data.campaign
    totals = list(data.recipients.values())
    if not totals and not campaign.variants:
        return None
    statuses = [
        {"key": key, "label": label, "hint": hint, "count": sum(t[key] for t in totals)}
        for key, (label, hint) in RECIPIENT_STATUSES.items()
    ]
    recipients = sum(t["recipients"] for t in totals)
    pending = statuses[0]["count"]
    messages = sum(t["messages"] for t in totals)
    receipts = sum(t["receipts"] for t in totals)
    test = variant_test(data) if len(campaign.variants) >= 2 else None
    ready, ready_segments = ready_counts(campaign.id)
    price = campaign.cost_per_segment
    return {
        "ready": ready,
        "ready_segments": ready_segments,
        "ready_cost": price * ready_segments if price is not None else None,
        "statuses": statuses,
        "recipients": recipients,
        "written": recipients - pending - sum(t["suppressed"] for t in totals),
        "pending": pending,
        "messages": messages,
        "cost_note": _cost_note(campaign, data.report),
        "ctr_note": _ctr_note(data.report, messages, receipts),
        "verdicts": [
            {"text": note, "called": not note.startswith(("Too early", "No winner", "Nothing to compare"))}
            for note in (test.notes if test else [])
        ],
        "audiences": [
            {"segment": key, "label": label, "hint": hint} for key, (label, hint) in AUDIENCE_LABELS.items()
        ],
        "variants": [v.name for v in campaign.variants],
        "test": test,
        # Opt-outs per variant are on the page's Opt-outs card instead.
        "test_columns": [c for c in test.columns if not c.key.startswith("opt_out")] if test else [],
        "bars": variant_bars(test) if test else [],
    }


def _prepared_message(campaign: Campaign, result: Any) -> str:
    """ "12 messages ready (A: 6, B: 6); the short link pushes 3 messages into
    another segment." """
    order = {v.name: i for i, v in enumerate(campaign.variants)}
    shares = sorted(((name, n) for name, n in result.per_variant.items() if name), key=lambda s: order.get(s[0], 0))
    text = f"{plural(result.prepared, 'message')} ready"
    if shares:
        text += " (" + ", ".join(f"{name}: {n:,}" for name, n in shares) + ")"
    if result.link_adds_segment:
        text += f"; the short link pushes {plural(result.link_adds_segment, 'message')} into another segment"
    if result.suppressed:
        text += f"; {plural(result.suppressed, 'recipient')} opted out and will not be texted"
    return text + "."


@bp.post("/campaigns/<int:campaign_id>/messages/prepare")
@login_required
def messages_prepare(campaign_id: int) -> Response:
    from ...sms.messages import PrepareError, prepare_messages

    campaign = campaign_or_404(campaign_id)
    if not PrepareForm().validate_on_submit():
        raise InvalidInput("The form expired; please go back and press “Prepare messages” again.")
    back = url_for(".campaign", campaign_id=campaign.id) + "#messages"
    if not CampaignData(campaign).recipients:
        flash(
            "This campaign has no recipients yet: import them (flask smstrack import-recipients, or the API), "
            "then prepare the messages.",
            "error",
        )
        return redirect(back)
    try:
        result = prepare_messages(campaign)
    except PrepareError as err:
        flash(f"Messages not prepared — {err}.", "error")
        return redirect(back)
    start_catch_up([campaign.id])
    if result.prepared:
        flash(_prepared_message(campaign, result))
    elif not result.no_consent:
        flash("Every message is already sent or exported: there is nothing left to prepare.")
    if result.no_consent:
        from ...sms.consent import left_out_message

        flash(f"{left_out_message(result.no_consent)}.", "error")
    return redirect(back)


@bp.post("/campaigns/<int:campaign_id>/messages/export")
@login_required
def messages_export(campaign_id: int) -> Response:
    from ...reports.export import messages_csv
    from ...sms.outbox import mark_exported, message_rows

    campaign = campaign_or_404(campaign_id)
    if not PrepareForm().validate_on_submit():
        raise InvalidInput("The form expired; please go back and press “Export messages (CSV)” again.")
    rows = message_rows(campaign)
    mark_exported(campaign.id)
    return csv_download(messages_csv(rows), f"campaign-{campaign.id}-messages")


@bp.get("/campaigns/<int:campaign_id>/messages.csv")
@login_required
def messages_csv_download(campaign_id: int) -> Response:
    """The same file again: downloading changes nothing."""
    from ...reports.export import messages_csv
    from ...sms.outbox import message_rows

    campaign = campaign_or_404(campaign_id)
    return csv_download(messages_csv(message_rows(campaign)), f"campaign-{campaign.id}-messages")


@bp.get("/campaigns/<int:campaign_id>/recipients.csv")
@login_required
def recipients_csv_download(campaign_id: int) -> Response:
    from ...reports.audience import audience
    from ...reports.export import audience_csv
    from ...schemas import AudienceSchema

    campaign = campaign_or_404(campaign_id)
    args = {k: v for k in ("segment", "variant", "device", "country") if (v := request.args.get(k, "").strip())}
    try:
        query = AudienceSchema().load(args)
    except ValidationError as err:
        problems = [
            f"“{name}”: {' '.join(map(str, messages if isinstance(messages, list) else [messages]))}"
            for name, messages in err.messages.items()
        ]
        raise InvalidInput("These recipients cannot be downloaded. " + "; ".join(problems))
    filters = {k: query[k] for k in ("variant", "device", "country")}
    members = audience(campaign, query["segment"], **filters)
    return csv_download(audience_csv(members), f"campaign-{campaign.id}-{query['segment']}")
