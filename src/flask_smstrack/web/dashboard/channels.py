"""The Channels page (the channel comparison, its chart and CSV), a link's
QR code page and downloads, and the answer of the SMS pages for campaigns
of other channels."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from flask import render_template, request
from flask_login import current_user, login_required
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ...errors import Conflict, InvalidInput, NotFound
from ...manage import short_url
from ...models import Campaign, Link
from ...models.channels import is_sms, sms_only_message
from ...reports.channels import CHANNEL_COLUMNS, CHANNEL_LABELS, ChannelRow, channel_comparison
from ...reports.export import csv_download, table_csv
from ...reports.tables import Table
from ...schemas.channels import QrSchema
from ...tracking.qr import QR_MIMETYPES, qr_image
from .base import bp, campaign_or_404, dashboard_principal, timezone_names, tz_arg
from .charts import _decimal_pct

#: The pages that only SMS campaigns have: 409 for the others.
SMS_ONLY_PAGES = frozenset(
    f"smstrack_dashboard.{name}"
    for name in ("send", "messages_prepare", "messages_export", "messages_csv_download", "recipients_csv_download")
)


@bp.before_request
def _sms_only() -> None:
    if request.endpoint not in SMS_ONLY_PAGES or not request.view_args or not current_user.is_authenticated:
        return  # a visitor who is not logged in goes to the login page first
    campaign = campaign_or_404(request.view_args["campaign_id"])
    if not is_sms(campaign):
        raise Conflict({"channel": [sms_only_message(campaign)]})


def _rows(tz: str) -> list[ChannelRow]:
    principal = dashboard_principal()
    return channel_comparison(principal.owner_id, is_admin=principal.is_admin, tz=tz)


def channel_bars(rows: list[ChannelRow]) -> list[dict[str, Any]]:
    """The chart: per measure (unique clicks; revenue and profit in each
    currency), one bar per channel, the months added up, the longest full
    width. Money is drawn per currency, never added across them."""
    clicks: dict[str, int] = defaultdict(int)
    money: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(Decimal)))
    for r in rows:
        clicks[r.channel] += r.unique_clicks
        money[r.currency]["revenue"][r.channel] += r.revenue
        if r.profit is not None:
            money[r.currency]["profit"][r.channel] += r.profit
    charts = [_bars("clicks", "Unique clicks", clicks, None)]
    for currency in sorted(money):
        for key, label in (("revenue", "Revenue"), ("profit", "Profit")):
            if money[currency][key]:
                charts.append(_bars(key, f"{label} ({currency})", money[currency][key], currency))
    return [c for c in charts if c["bars"]]


def _bars(key: str, label: str, values: dict[str, Any], currency: str | None) -> dict[str, Any]:
    top = max((abs(v) for v in values.values()), default=0)
    return {
        "key": key, "label": label, "currency": currency,
        "bars": [
            {"channel": CHANNEL_LABELS.get(ch, ch), "value": v, "negative": v < 0,
             "bar": _decimal_pct(abs(v), top) if top else "0"}
            for ch, v in sorted(values.items(), key=lambda item: -item[1])
        ],
    }


@bp.get("/channels")
@login_required
def channels() -> tuple[str, int]:
    tz, tz_error = tz_arg()
    rows = _rows(tz)
    return render_template(
        "smstrack/channels.html",
        rows=rows,
        columns=CHANNEL_COLUMNS,
        labels=CHANNEL_LABELS,
        charts=channel_bars(rows),
        tz=tz,
        tz_error=tz_error,
        tz_arg=tz if request.args.get("tz") and not tz_error else None,
        timezones=timezone_names(),
    ), (400 if tz_error else 200)


@bp.get("/channels.csv")
@login_required
def channels_csv() -> Response:
    tz, tz_error = tz_arg()
    if tz_error:
        return Response(tz_error + "\n", status=400, mimetype="text/plain")
    table = Table("channels", "Channels", CHANNEL_COLUMNS, [r.as_row() for r in _rows(tz)])
    return csv_download(table_csv(table), "channels")


def _link_or_404(campaign: Campaign, link_id: int) -> Link:
    link = next((item for item in campaign.links if item.id == link_id), None)
    if link is None:
        raise NotFound(f"Campaign {campaign.id} has no link {link_id}.")
    return link


def _qr_options() -> dict[str, int]:
    try:
        query = QrSchema().load({k: v for k, v in request.args.items() if k in ("scale", "border")})
    except ValidationError as err:
        raise InvalidInput(err.messages) from None
    return {"scale": query["scale"], "border": query["border"]}


@bp.get("/campaigns/<int:campaign_id>/links/<int:link_id>/qr")
@login_required
def link_qr(campaign_id: int, link_id: int) -> str:
    campaign = campaign_or_404(campaign_id)
    link = _link_or_404(campaign, link_id)
    return render_template(
        "smstrack/link_qr.html", campaign=campaign, link=link, url=short_url(link), options=_qr_options(),
    )


@bp.get("/campaigns/<int:campaign_id>/links/<int:link_id>/qr.svg")
@login_required
def link_qr_svg(campaign_id: int, link_id: int) -> Response:
    return _qr_download(campaign_id, link_id, "svg")


@bp.get("/campaigns/<int:campaign_id>/links/<int:link_id>/qr.png")
@login_required
def link_qr_png(campaign_id: int, link_id: int) -> Response:
    return _qr_download(campaign_id, link_id, "png")


def _qr_download(campaign_id: int, link_id: int, fmt: str) -> Response:
    campaign = campaign_or_404(campaign_id)
    link = _link_or_404(campaign, link_id)
    options = _qr_options()
    disposition = "attachment" if request.args.get("download") == "1" else "inline"
    return Response(qr_image(link, fmt, **options), mimetype=QR_MIMETYPES[fmt], headers={
        "Content-Disposition": f'{disposition}; filename="{link.code}-qr.{fmt}"',
        "Cache-Control": "private, max-age=300",
    })
