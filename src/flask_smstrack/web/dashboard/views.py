"""The dashboard under ``/smstrack/``: login, the campaign list, a page per
campaign, forms to create and edit campaigns and links, the snippet to
install, and CSV downloads of every table.

Every number shown comes from :mod:`.reports`; the views only pick, order,
format and draw what the reports computed. Forms are validated by the same
marshmallow schemas as the JSON API.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any, Callable
from zoneinfo import ZoneInfo, available_timezones

import pycountry
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from ...auth import Principal, find_user, principal_from_user
from ...manage import (
    CodeTaken,
    create_campaign,
    create_link,
    get_campaign,
    list_campaigns,
    short_url,
    sync_variants,
)
from ...models import Campaign
from ...reports.campaign import (
    BREAKDOWNS,
    TABLES,
    CampaignData,
    CampaignReport,
    Table,
    campaign_list_table,
    campaign_table,
    send_date,
)
from ...reports.export import csv_download, table_csv
from ...schemas import (
    UTM_KEYS,
    CampaignSchema,
    LinkSchema,
    VariantSchema,
    format_money,
    is_timezone,
)
from ...state import get_state

bp = Blueprint("smstrack_dashboard", __name__)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):
    pass


class CampaignForm(FlaskForm):
    """CSRF only: the fields are validated by :class:`.schemas.CampaignSchema`."""


class LinkForm(FlaskForm):
    """CSRF only: the fields are validated by :class:`.schemas.LinkSchema`."""


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    return {"smstrack_csrf": generate_csrf, "smstrack_builtin_login": get_state().builtin_login}


def _error_page(error: HTTPException) -> tuple[str, int]:
    return render_template("smstrack/error.html", error=error), error.code or 500


for _code in (400, 403, 404):
    bp.register_error_handler(_code, _error_page)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("smstrack_dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if not get_state().builtin_login:
        abort(404)
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(form.email.data)
        if user is not None and user.check_password(form.password.data):
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("Wrong email or password.")
    status = 400 if request.method == "POST" else 200
    return render_template("smstrack/login.html", form=form), status


@bp.post("/logout")
def logout() -> Response:
    if not get_state().builtin_login:
        abort(404)
    LogoutForm().validate_on_submit() or abort(400, "The form expired; please try again.")
    logout_user()
    flash("You are logged out.")
    return redirect(url_for("smstrack_dashboard.login"))


# -- who is asking ------------------------------------------------------------


def _principal() -> Principal:
    principal = principal_from_user(current_user._get_current_object())
    if principal is None:
        abort(403, "Your account may not use the SMS tracking dashboard. Ask an administrator for access.")
    return principal


def _campaign_or_404(campaign_id: int) -> Campaign:
    principal = _principal()
    campaign = get_campaign(campaign_id)
    if campaign is None or not principal.can_see(campaign):
        abort(404, f"There is no campaign {campaign_id}, or it belongs to someone else.")
    return campaign


def _default_tz() -> str:
    return current_app.config["SMSTRACK_TIMEZONE"]


def _tz_arg() -> tuple[str, str | None]:
    """The ``?tz=`` of the request, or the default timezone and a message."""
    raw = request.args.get("tz", "").strip()
    if not raw:
        return _default_tz(), None
    if not is_timezone(raw):
        return _default_tz(), (
            f"Unknown timezone “{raw[:64]}”: use a name such as Europe/Paris or America/New_York."
            f" Showing {_default_tz()} instead."
        )
    return raw, None


@lru_cache(maxsize=1)
def _timezone_names() -> tuple[str, ...]:
    regions = ("Africa/", "America/", "Antarctica/", "Asia/", "Atlantic/", "Australia/", "Europe/", "Indian/", "Pacific/")
    return ("UTC", *sorted(n for n in available_timezones() if n.startswith(regions)))




def _local(moment: dt.datetime | None, tz: str) -> dt.datetime | None:
    return None if moment is None else moment.astimezone(ZoneInfo(tz))


# -- the campaign list ----------------------------------------------------------

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_arg(name: str, label: str) -> tuple[dt.date | None, str | None]:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None, None
    try:
        if not _DATE_RE.match(raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw), None
    except ValueError:
        return None, f"The {label} date “{raw[:40]}” is not a date: use YYYY-MM-DD, for example 2024-03-31."


@dataclass(frozen=True)
class _ListColumn:
    key: str
    label: str
    #: Sort key of a (campaign, report, send date) row; ``None`` sorts last.
    sort: Callable[[Campaign, CampaignReport, dt.date], Any]
    #: Sorted high to low on the first click of its header.
    desc_first: bool = True
    #: The column's full name, when the label is short.
    title: str | None = None


def _money_key(value: Decimal | None, report: CampaignReport) -> Any:
    # Amounts compare within a currency only: grouped by currency first.
    return None if value is None else (report.currency, value)


LIST_COLUMNS = [
    _ListColumn("name", "Campaign", lambda c, r, d: c.name.casefold(), desc_first=False),
    _ListColumn("date", "sent on", lambda c, r, d: (d, c.id), title="send date"),
    # What it earned first, then the funnel.
    _ListColumn("revenue", "Revenue", lambda c, r, d: _money_key(r.own_revenue, r)),
    _ListColumn("cost", "Cost", lambda c, r, d: _money_key(r.cost, r)),
    _ListColumn("profit", "Profit", lambda c, r, d: _money_key(r.profit, r)),
    _ListColumn("roi", "ROI", lambda c, r, d: r.roi),
    _ListColumn("sent", "Sent", lambda c, r, d: r.audience),
    _ListColumn("clicks", "Clicks", lambda c, r, d: r.clicks),
    _ListColumn("ctr", "CTR", lambda c, r, d: r.ctr),
    _ListColumn("conversions", "Conv.", lambda c, r, d: r.conversions, title="conversions"),
    _ListColumn("conversion_rate", "Conv. rate", lambda c, r, d: r.conversion_rate, title="conversion rate"),
]
_BY_KEY = {c.key: c for c in LIST_COLUMNS}


@dataclass
class _ListRow:
    campaign: Campaign
    report: CampaignReport
    date: dt.date


@dataclass
class _CampaignList:
    rows: list[_ListRow]
    total: int
    start: dt.date | None
    end: dt.date | None
    sort: str
    direction: str
    errors: list[str]


def _campaign_list() -> _CampaignList:
    """The visible campaigns with their reports, filtered and sorted as the
    query string asks."""
    principal = _principal()
    tz = ZoneInfo(_default_tz())
    errors = []
    start, error = _date_arg("start", "start")
    errors += [error] if error else []
    end, error = _date_arg("end", "end")
    errors += [error] if error else []
    if start and end and start > end:
        errors.append(f"The start date {start} is after the end date {end}: swap them to see campaigns in between.")
        start = end = None
    campaigns = list_campaigns(principal.owner_id, is_admin=principal.is_admin)
    rows = [_ListRow(c, CampaignData(c).report, send_date(c, tz)) for c in campaigns]
    total = len(rows)
    rows = [r for r in rows if (start is None or r.date >= start) and (end is None or r.date <= end)]

    sort = request.args.get("sort", "date")
    column = _BY_KEY.get(sort) or _BY_KEY["date"]
    direction = request.args.get("dir")
    if direction not in ("asc", "desc"):
        direction = "desc" if column.desc_first else "asc"
    keyed = [(column.sort(r.campaign, r.report, r.date), r) for r in rows]
    known = sorted((k for k in keyed if k[0] is not None), key=lambda k: k[0], reverse=direction == "desc")
    rows = [r for _, r in known] + [r for k, r in keyed if k is None]
    return _CampaignList(rows, total, start, end, column.key, direction, errors)


def _list_table(listing: _CampaignList) -> Table:
    """The campaign list as a table for CSV: values of the reports only."""
    return campaign_list_table([(row.campaign, row.report, row.date) for row in listing.rows])


def _list_args(listing: _CampaignList, **changes: Any) -> dict[str, Any]:
    args = {
        "start": listing.start.isoformat() if listing.start else None,
        "end": listing.end.isoformat() if listing.end else None,
        "sort": listing.sort,
        "dir": listing.direction,
    }
    args.update(changes)
    return {k: v for k, v in args.items() if v}


@bp.get("/")
@login_required
def index() -> tuple[str, int]:
    listing = _campaign_list()
    headers = []
    for column in LIST_COLUMNS:
        active = column.key == listing.sort
        if active:
            direction = "asc" if listing.direction == "desc" else "desc"
        else:
            direction = "desc" if column.desc_first else "asc"
        headers.append(
            {
                "column": column,
                "active": active,
                "url": url_for(".index", **_list_args(listing, sort=column.key, dir=direction)),
                "aria": ("descending" if listing.direction == "desc" else "ascending") if active else None,
            }
        )
    return render_template(
        "smstrack/index.html",
        listing=listing,
        headers=headers,
        csv_url=url_for(".campaigns_csv", **_list_args(listing)),
        raw_start=request.args.get("start", ""),
        raw_end=request.args.get("end", ""),
        timezone=_default_tz(),
    ), (400 if listing.errors else 200)


@bp.get("/campaigns.csv")
@login_required
def campaigns_csv() -> Response:
    listing = _campaign_list()
    if listing.errors:
        return Response(" ".join(listing.errors) + "\n", status=400, mimetype="text/plain")
    return csv_download(table_csv(_list_table(listing)), "campaigns")


# -- one campaign ---------------------------------------------------------------


def _decimal_pct(num: Decimal | int, den: Decimal | int) -> str:
    """``num / den`` as a CSS percentage (geometry only, never shown as a number)."""
    if not den:
        return "0"
    return str((Decimal(num) * 100 / Decimal(den)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def _nice_max(value: Decimal, *, whole: bool) -> Decimal:
    """The smallest round number (1, 2, 2.5 or 5 x 10^n; whole when asked)
    at or above ``value``: the top of a chart's scale."""
    if value <= 0:
        return Decimal(1)
    base = Decimal(1).scaleb(value.adjusted())
    for m in (1, 2, Decimal("2.5"), 5, 10):
        candidate = base * m
        if candidate >= value and (not whole or candidate == candidate.to_integral_value()):
            return candidate
    return base * 10  # pragma: no cover


def _tick(value: Decimal) -> str:
    value = value.normalize()
    if value == value.to_integral_value():
        return f"{value.quantize(Decimal(1)):,}"
    return f"{value:,f}"


def _when(start: dt.datetime, hours: int) -> str:
    day = f"{start:%a} {start.day} {start:%b}"
    if hours == 1:
        end = start + dt.timedelta(hours=1)
        return f"{day}, {start:%H:%M}–{end:%H:%M}"
    if start.hour == 0 and start.minute == 0:
        return day
    return f"{day}, from {start:%H:%M} ({hours} h)"


def _chart(series: Table, currency: str) -> dict[str, Any] | None:
    """Three bar charts sharing one time axis, one bar per bucket of the
    time series: hours first, then days (the ``hours`` column)."""
    rows = series.rows
    if not rows:
        return None
    n = len(rows)
    # At least a day wide, so that a few hours of clicks are not a few giant bars.
    slots = max(n, 24)
    starts = [dt.datetime.fromisoformat(r["start"]) for r in rows]
    whens = [_when(start, r["hours"]) for start, r in zip(starts, rows)]
    tips = [
        f"{when}: {r['clicks']:,} clicks ({r['unique_clicks']:,} unique),"
        f" {r['conversions']:,} conversions, {format_money(r['revenue'])} {currency}"
        for when, r in zip(whens, rows)
    ]
    panels = []
    for key, label, money in (
        ("clicks", "Clicks", False),
        ("conversions", "Conversions", False),
        ("revenue", f"Revenue ({currency})", True),
    ):
        values = [Decimal(r[key]) for r in rows]
        top = _nice_max(max(values), whole=not money)
        ticks = [Decimal(0), top / 2, top]
        if not money and top / 2 != (top / 2).to_integral_value():
            ticks = [Decimal(0), top]
        bars = []
        for i, v in enumerate(values):
            height = Decimal(_decimal_pct(v, top))
            if v > 0 and height < 1:
                height = Decimal(1)  # a sliver stays visible
            bars.append({"x": i, "height": str(height), "y": str(100 - height)})
        panels.append(
            {
                "key": key,
                "label": label,
                "bars": bars,
                "ticks": [{"label": _tick(t), "pct": _decimal_pct(t, top)} for t in ticks],
                "gridlines": [str(100 - Decimal(_decimal_pct(t, top))) for t in ticks[1:]],
            }
        )
    # Time axis: about six labels, each bucket named by its local start; the
    # first day-long bucket and the last bucket are always named.
    daily_from = next((i for i, r in enumerate(rows) if r["hours"] != 1), None)
    step = max(1, -(-slots // 6))
    fixed = {0} | ({daily_from} if daily_from else set())
    if n - 1 >= step and all((n - 1 - f) * 2 >= step for f in fixed):
        fixed.add(n - 1)
    picked = sorted(fixed | {i for i in range(0, n, step) if all(abs(i - f) * 2 >= step for f in fixed - {0})})
    # A phone has room for half of them: keep those farthest apart.
    roomy = [0, *([daily_from] if daily_from else [])]
    for i in sorted(picked, key=lambda i: (i != n - 1, i)):
        if all(abs(i - j) >= step * 3 // 2 for j in roomy):
            roomy.append(i)
    labels = []
    for i in picked:
        start, hours = starts[i], rows[i]["hours"]
        last = i == n - 1 and i != 0
        labels.append(
            {
                "left": _decimal_pct(i + 1 if last else i, n),
                "line1": f"{start.day} {start:%b}",
                "line2": f"{start:%H:%M}" if hours == 1 else "",
                "cls": " ".join(
                    c for c, on in (("st-tick-last", last), ("st-tick-minor", i not in roomy)) if on
                ),
            }
        )
    return {
        "slots": slots,
        "width": _decimal_pct(n, slots),
        "panels": panels,
        "labels": labels,
        "daily_from": daily_from or None,
        "rows": [{**r, "when": when, "tip": tip} for when, tip, r in zip(whens, tips, rows)],
    }


def _heatmap(table: Table, noun: str) -> dict[str, Any]:
    hours = [c.key for c in table.columns[1:]]
    top = max((row[h] for row in table.rows for h in hours), default=0)
    grid = []
    for row in table.rows:
        cells = []
        for h in hours:
            v = row[h]
            # Colour strength: 0.15 for the quietest hour with activity, 1 for the busiest.
            alpha = (Decimal("0.15") + Decimal("0.85") * v / top).quantize(Decimal("0.01")) if v else None
            tip = f"{row['weekday']} {h[1:]}:00–{h[1:]}:59: {v:,} {noun if v != 1 else noun.rstrip('s')}"
            cells.append({"value": v, "alpha": alpha, "tip": tip})
        grid.append({"weekday": row["weekday"], "cells": cells})
    return {"table": table, "grid": grid, "hours": [h[1:] for h in hours], "top": top, "empty": top == 0}


def _label(table: Table, value: str) -> tuple[str, str | None]:
    """A breakdown value as shown, and a hint beside it."""
    if table.name == "countries" and len(value) == 2:
        country = pycountry.countries.get(alpha_2=value)
        return value, country.name if country else None
    if table.name == "devices":
        return value.capitalize() if value != "(unknown)" else value, None
    if table.name == "variants" and value != "(unknown)":
        return f"Variant {value}", None
    return value, None


def _breakdown(table: Table) -> dict[str, Any]:
    rows = []
    for row in table.rows:
        text, hint = _label(table, row["value"])
        rows.append({**row, "label": text, "hint": hint, "bar": _decimal_pct(row["share"] or 0, 1)})
    known = any(row["value"] != "(unknown)" for row in table.rows)
    return {"table": table, "rows": rows, "known": known}


def _delays(table: Table) -> dict[str, Any]:
    top = max((row["count"] for row in table.rows), default=0)
    rows = [{**row, "bar": _decimal_pct(row["count"], top)} for row in table.rows]
    # Only the bins from the first to the last with a count.
    used = [i for i, row in enumerate(rows) if row["count"]]
    if used:
        rows = rows[used[0] : used[-1] + 1]
    return {"table": table, "rows": rows, "empty": not used}


@bp.get("/campaigns/<int:campaign_id>")
@login_required
def campaign(campaign_id: int) -> tuple[str, int]:
    campaign = _campaign_or_404(campaign_id)
    tz, tz_error = _tz_arg()
    data = CampaignData(campaign, tz)
    report = data.report
    breakdowns = [_breakdown(campaign_table(data, name)) for name in BREAKDOWNS]
    breakdowns = [b for b in breakdowns if b["table"].name != "variants" or b["known"]]
    return render_template(
        "smstrack/campaign.html",
        campaign=campaign,
        r=report,
        has_data=bool(report.clicks or report.previews or report.bots or report.conversions),
        other_revenue=sorted((cur, v) for cur, v in report.revenue.items() if cur != report.currency),
        links=[(link, short_url(link)) for link in campaign.links],
        chart=_chart(campaign_table(data, "timeseries"), campaign.currency),
        breakdowns=breakdowns,
        heatmaps=[
            _heatmap(campaign_table(data, "heatmap_clicks"), "clicks"),
            _heatmap(campaign_table(data, "heatmap_conversions"), "conversions"),
        ],
        delays=[
            _delays(campaign_table(data, "send_to_click")),
            _delays(campaign_table(data, "click_to_conversion")),
        ],
        tz=tz,
        tz_error=tz_error,
        tz_arg=tz if request.args.get("tz") and not tz_error else None,
        timezones=_timezone_names(),
        sent_at=_local(campaign.sent_at, tz),
        messages_card=_messages_card(data),
    ), (400 if tz_error else 200)


@bp.get("/campaigns/<int:campaign_id>/tables/<name>.csv")
@login_required
def table_download(campaign_id: int, name: str) -> Response:
    campaign = _campaign_or_404(campaign_id)
    if name not in TABLES:
        abort(404, f"There is no table “{name}”; the tables are: {', '.join(sorted(TABLES))}.")
    tz, tz_error = _tz_arg()
    if tz_error:
        return Response(tz_error + "\n", status=400, mimetype="text/plain")
    table = campaign_table(CampaignData(campaign, tz), name)
    return csv_download(table_csv(table), f"campaign-{campaign.id}-{name}")


@bp.get("/campaigns/<int:campaign_id>/install")
@login_required
def install(campaign_id: int) -> str:
    from ..snippet import snippet_tag

    campaign = _campaign_or_404(campaign_id)
    return render_template(
        "smstrack/install.html",
        campaign=campaign,
        r=CampaignData(campaign).report,
        snippet_tag=snippet_tag(),
        links=[(link, short_url(link)) for link in campaign.links],
    )


class LinkCheckForm(FlaskForm):
    """CSRF only: "Test links" has no fields."""


@bp.route("/campaigns/<int:campaign_id>/check-links", methods=["GET", "POST"])
@login_required
def check_links(campaign_id: int) -> str:
    from ...sms.linkcheck import check_campaign_links

    campaign = _campaign_or_404(campaign_id)
    form = LinkCheckForm()
    checks = None
    if request.method == "POST":
        form.validate_on_submit() or abort(400, "The form expired; please go back and press “Test links” again.")
        checks = check_campaign_links(campaign)
    return render_template(
        "smstrack/link_check.html",
        campaign=campaign,
        form=form,
        checks=checks,
        timeout=current_app.config["SMSTRACK_LINK_CHECK_TIMEOUT"],
    )


# -- forms ----------------------------------------------------------------------


def _flat_messages(messages: Any, prefix: str = "") -> list[str]:
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            label = f"{prefix}{key}: " if isinstance(key, str) and key not in ("_schema", "value", "key") else prefix
            out += _flat_messages(value, label)
        return out
    if isinstance(messages, (list, tuple)):
        return [m for item in messages for m in _flat_messages(item, prefix)]
    return [f"{prefix}{messages}"]


def _errors(err: ValidationError) -> dict[str, list[str]]:
    messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
    return {field: _flat_messages(value) for field, value in messages.items()}


_CAMPAIGN_FIELDS = (
    "name", "currency", "cost", "cost_per_message", "cost_per_segment", "sent", "sent_at", "message_template"
)
#: Variant slots on the campaign form (an A/B/C/D test at most there).
_VARIANT_SLOTS = 4
_MONEY_FIELDS = ("cost", "cost_per_message", "cost_per_segment")


def _campaign_values(campaign: Campaign, tz: str) -> dict[str, str]:
    sent_at = _local(campaign.sent_at, tz)
    return {
        "name": campaign.name,
        "currency": campaign.currency,
        "cost": format_money(campaign.cost) if campaign.cost is not None else "",
        **{k: format_money(getattr(campaign, k)) if getattr(campaign, k) is not None else "" for k in _MONEY_FIELDS},
        "sent": str(campaign.sent) if campaign.sent is not None else "",
        "sent_at": f"{sent_at:%Y-%m-%dT%H:%M}" if sent_at else "",
        "message_template": campaign.message_template or "",
    }


def _campaign_payload(values: dict[str, str], tz: str) -> dict[str, Any]:
    """Form strings as the API's JSON would carry them; the schema judges."""
    payload: dict[str, Any] = {"name": values["name"], "currency": values["currency"]}
    for key in (*_MONEY_FIELDS, "message_template"):
        payload[key] = values[key] or None
    sent = re.sub(r"[\s,_]", "", values["sent"])
    payload["sent"] = int(sent) if sent.isdigit() else (values["sent"] or None)
    raw = values["sent_at"]
    if raw:
        try:
            moment = dt.datetime.fromisoformat(raw)
        except ValueError:
            payload["sent_at"] = raw
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=ZoneInfo(tz))
            payload["sent_at"] = moment.isoformat()
    else:
        payload["sent_at"] = None
    return payload


def _form_values(fields: tuple[str, ...]) -> dict[str, str]:
    return {k: request.form.get(k, "").strip()[:4096] for k in fields}


def _variant_slots(campaign: Campaign | None) -> list[dict[str, str]]:
    """The variant slots of the form: the campaign's variants, then blanks."""
    slots = [
        {"id": str(v.id), "name": v.name, "weight": str(v.weight), "message_template": v.message_template}
        for v in (campaign.variants if campaign else [])
    ]
    while len(slots) < _VARIANT_SLOTS:
        slots.append({"id": "", "name": "", "weight": "1", "message_template": ""})
    return slots


def _posted_variants() -> list[dict[str, str]]:
    return [
        {k: request.form.get(f"variant_{i}_{k}", "").strip()[:4096] for k in ("id", "name", "weight", "message_template")}
        for i in range(_VARIANT_SLOTS)
    ]


def _load_variants(slots: list[dict[str, str]]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The filled slots, validated by :class:`.schemas.VariantSchema`; errors
    are keyed ``variant_<slot>_<field>``."""
    wanted: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    names: set[str] = set()
    for i, slot in enumerate(slots):
        if not slot["name"] and not slot["message_template"]:
            continue
        weight = slot["weight"] or "1"
        try:
            data = VariantSchema().load(
                {"name": slot["name"], "message_template": slot["message_template"],
                 "weight": int(weight) if weight.isdigit() else weight}
            )
        except ValidationError as err:
            for key, messages in _errors(err).items():
                errors[f"variant_{i}_{key}"] = messages
            continue
        if data["name"] in names:
            errors[f"variant_{i}_name"] = [f"Another variant is already called {data['name']!r}."]
            continue
        names.add(data["name"])
        data["id"] = int(slot["id"]) if slot["id"].isdigit() else None
        wanted.append(data)
    if len(wanted) == 1:
        errors["variant_1_message_template"] = [
            "An A/B test needs at least two variants: add a second one, or put the message above."
        ]
    return wanted, errors


@dataclass
class _MessagePreview:
    label: str
    text: str
    encoding: str
    characters: int
    segments: int
    warning: str | None
    unknown: list[str]
    price: Decimal | None
    recipients: int | None
    cost: Decimal | None


def _message_previews(campaign: Campaign | None, values: dict[str, str], slots: list[dict[str, str]]) -> list[_MessagePreview]:
    """Each message version rendered with sample links: what it costs."""
    from ...sms.messages import attribute_names, preview, sample_values

    versions = [(f"Variant {s['name'] or i + 1}", s["message_template"], s["weight"]) for i, s in enumerate(slots) if s["message_template"]]
    if not versions and values.get("message_template"):
        versions = [("Message", values["message_template"], "1")]
    if not versions:
        return []
    links = len(campaign.links) if campaign else 1
    known = attribute_names(campaign.id) if campaign else set()
    sample = sample_values(campaign.id) if campaign else None
    recipients = campaign.recipient_count() if campaign else 0
    try:
        price = Decimal(values.get("cost_per_segment") or "x")
    except ArithmeticError:
        price = None
    if price is not None and not (price.is_finite() and 0 <= price < 10**6):
        price = None
    weights = [int(w) if w.isdigit() and int(w) > 0 else 1 for _, _, w in versions]
    out = []
    for (label, text, _), weight in zip(versions, weights):
        shown = preview(text, values=sample, links=max(links, 1), known=known)
        share = round(recipients * weight / sum(weights)) if recipients else None
        per_message = price * shown.info.segments if price is not None else None
        out.append(
            _MessagePreview(
                label, shown.text, shown.info.encoding, shown.info.characters, shown.info.segments, shown.warning(),
                shown.unknown, per_message, share,
                per_message * share if per_message is not None and share is not None else None,
            )
        )
    return out


def _expired(form: FlaskForm) -> dict[str, list[str]]:
    return {"_schema": ["The form expired; please submit it again."]} if form.errors else {}


def _last_currency(principal: Principal) -> str:
    campaigns = list_campaigns(principal.owner_id, is_admin=False)
    return campaigns[0].currency if campaigns else "USD"


@bp.route("/campaigns/new", methods=["GET", "POST"])
@login_required
def campaign_new() -> str | Response | tuple[str, int]:
    principal = _principal()
    form = CampaignForm()
    tz = _default_tz()
    values = {k: "" for k in _CAMPAIGN_FIELDS}
    values["currency"] = _last_currency(principal)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _form_values(_CAMPAIGN_FIELDS)
        if form.validate_on_submit():
            try:
                data = CampaignSchema().load(_campaign_payload(values, tz))
            except ValidationError as err:
                errors = _errors(err)
            else:
                if request.form.get("action") != "preview":
                    created = create_campaign(data, principal.owner_id)
                    flash(f"Campaign “{created.name}” created. Now add the link that goes in your SMS.")
                    return redirect(url_for(".link_new", campaign_id=created.id))
        else:
            errors = _expired(form)
    return render_template(
        "smstrack/campaign_form.html", form=form, values=values, errors=errors, campaign=None, tz=tz,
        previews=_message_previews(None, values, []), slots=[],
    ), (400 if errors else 200)


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@login_required
def campaign_edit(campaign_id: int) -> str | Response | tuple[str, int]:
    campaign = _campaign_or_404(campaign_id)
    form = CampaignForm()
    tz = _default_tz()
    values = _campaign_values(campaign, tz)
    slots = _variant_slots(campaign)
    locked = campaign.messages_sent() > 0
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _form_values(_CAMPAIGN_FIELDS)
        if not locked:
            slots = _posted_variants()
        if form.validate_on_submit():
            try:
                data = CampaignSchema().load(_campaign_payload(values, tz), partial=True)
            except ValidationError as err:
                errors = _errors(err)
                data = {}
            wanted, variant_errors = ([], {}) if locked else _load_variants(slots)
            errors.update(variant_errors)
            if not errors and request.form.get("action") != "preview":
                for key, value in data.items():
                    setattr(campaign, key, value)
                if not locked:
                    sync_variants(campaign, wanted)
                get_state().db.session.commit()
                flash(f"Campaign “{campaign.name}” saved.")
                return redirect(url_for(".campaign", campaign_id=campaign.id))
        else:
            errors = _expired(form)
    return render_template(
        "smstrack/campaign_form.html", form=form, values=values, errors=errors, campaign=campaign, tz=tz,
        previews=_message_previews(campaign, values, slots), slots=slots, locked=locked,
    ), (400 if errors else 200)


_LINK_FIELDS = ("destination_url", "code", *UTM_KEYS)


@bp.route("/campaigns/<int:campaign_id>/links/new", methods=["GET", "POST"])
@login_required
def link_new(campaign_id: int) -> str | Response | tuple[str, int]:
    campaign = _campaign_or_404(campaign_id)
    form = LinkForm()
    values = {k: "" for k in _LINK_FIELDS}
    append_click_id = True
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _form_values(_LINK_FIELDS)
        append_click_id = request.form.get("append_click_id") == "y"
        if form.validate_on_submit():
            utm = {k: values[k] for k in UTM_KEYS if values[k]}
            payload = {
                "destination_url": values["destination_url"],
                "code": values["code"] or None,
                "append_click_id": append_click_id,
                "utm": utm or None,
            }
            try:
                link = create_link(campaign, LinkSchema().load(payload))
            except ValidationError as err:
                errors = _errors(err)
            except CodeTaken:
                errors = {"code": [f"The code “{values['code']}” is already in use; choose another, or leave it empty for a random one."]}
            else:
                flash(f"Link created: {short_url(link)} — put it in your SMS.")
                return redirect(url_for(".campaign", campaign_id=campaign.id) + "#links")
        else:
            errors = _expired(form)
    return render_template(
        "smstrack/link_form.html",
        form=form,
        campaign=campaign,
        values=values,
        append_click_id=append_click_id,
        errors=errors,
        utm_keys=UTM_KEYS,
        prefix=_short_url_prefix(),
    ), (400 if errors else 200)


def _short_url_prefix() -> tuple[str, str]:
    """The short URLs' common beginning, such as ``https://go.example.com``
    and ``/s/``."""
    base = current_app.config["SMSTRACK_BASE_URL"] or request.host_url
    prefix = current_app.config["SMSTRACK_LINK_PREFIX"].strip("/")
    return base.rstrip("/"), (f"/{prefix}/" if prefix else "/")


# -- messages: variants, per-recipient links, the next send ---------------------

#: A recipient's status on the Messages card, in the order a message moves,
#: with what it means.
RECIPIENT_STATUSES = {
    "pending": ("Pending", "imported, no message yet"),
    "ready": ("Ready", "message written, not sent yet"),
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
    """CSRF only: "Prepare messages" has no fields."""


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def _variant_bars(test: Table) -> list[dict[str, Any]]:
    """CTR per variant as horizontal bars, the best one full width."""
    top = max((row["ctr"] for row in test.rows if row["ctr"] is not None), default=None)
    return [
        {"variant": row["variant"], "ctr": row["ctr"], "bar": _decimal_pct(row["ctr"] or 0, top) if top else "0"}
        for row in test.rows
    ]


def _cost_note(campaign: Campaign, report: CampaignReport) -> str:
    """How the cost on the Messages card was reached."""
    cur = campaign.currency
    if campaign.cost is not None:
        return "the flat cost set in Edit"
    if campaign.cost_per_segment is not None:
        price = f"{format_money(campaign.cost_per_segment)} {cur}"
        if report.segments is None:
            return f"{price} per segment, once messages are written"
        return f"{_plural(report.segments, 'segment')} × {price}"
    if campaign.cost_per_message is not None:
        price = f"{format_money(campaign.cost_per_message)} {cur}"
        return f"{_plural(report.sent, 'message')} × {price}" if report.sent is not None else f"{price} per message"
    return "set a price per segment in Edit"


def _ctr_note(report: CampaignReport, messages: int, receipts: int) -> str:
    """Which count CTR divides by, in words."""
    if receipts:
        return (
            f"CTR = unique clicks ÷ messages delivered or still on their way ({report.audience:,}): "
            f"delivery receipts came for {receipts:,} of {_plural(messages, 'message')}, "
            f"{report.delivered:,} delivered and {report.undelivered:,} not."
        )
    if messages:
        return f"CTR = unique clicks ÷ sent ({messages:,}) until delivery receipts arrive, then ÷ delivered."
    if report.delivered is not None:
        return f"CTR = unique clicks ÷ delivered ({report.delivered:,}) as entered in Edit, until messages are written here."
    if report.sent is not None:
        return f"CTR = unique clicks ÷ sent ({report.sent:,}) as entered in Edit, until messages are written here."
    return "CTR = unique clicks ÷ sent, once messages are written (or delivered, once delivery receipts arrive)."


def _messages_card(data: CampaignData) -> dict[str, Any] | None:
    """What the campaign page's Messages card shows: recipients per status,
    messages, segments and cost, forwards, and the A/B test; ``None`` for a
    campaign without imported recipients or variants."""
    from ...reports.campaign import variant_test
    from ...sms.messages import ready_counts

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
        "written": recipients - pending,
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
        "bars": _variant_bars(test) if test else [],
    }


def _prepared_message(campaign: Campaign, result: Any) -> str:
    """ "12 messages ready (A: 6, B: 6); the short link pushes 3 messages into
    another segment." """
    order = {v.name: i for i, v in enumerate(campaign.variants)}
    shares = sorted(((name, n) for name, n in result.per_variant.items() if name), key=lambda s: order.get(s[0], 0))
    text = f"{_plural(result.prepared, 'message')} ready"
    if shares:
        text += " (" + ", ".join(f"{name}: {n:,}" for name, n in shares) + ")"
    if result.link_adds_segment:
        text += f"; the short link pushes {_plural(result.link_adds_segment, 'message')} into another segment"
    return text + "."


@bp.post("/campaigns/<int:campaign_id>/messages/prepare")
@login_required
def messages_prepare(campaign_id: int) -> Response:
    from ...sms.messages import PrepareError, prepare_messages

    campaign = _campaign_or_404(campaign_id)
    PrepareForm().validate_on_submit() or abort(
        400, "The form expired; please go back and press “Prepare messages” again."
    )
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
    if result.prepared:
        flash(_prepared_message(campaign, result))
    else:
        flash("Every message is already sent or exported: there is nothing left to prepare.")
    return redirect(back)


@bp.get("/campaigns/<int:campaign_id>/messages.csv")
@login_required
def messages_csv_download(campaign_id: int) -> Response:
    from ...reports.export import messages_csv
    from ...sms.messages import mark_exported, message_rows

    campaign = _campaign_or_404(campaign_id)
    rows = message_rows(campaign)
    mark_exported(campaign.id)
    return csv_download(messages_csv(rows), f"campaign-{campaign.id}-messages")


@bp.get("/campaigns/<int:campaign_id>/recipients.csv")
@login_required
def recipients_csv_download(campaign_id: int) -> Response:
    from ...reports.campaign import audience
    from ...reports.export import audience_csv
    from ...schemas import AudienceSchema

    campaign = _campaign_or_404(campaign_id)
    args = {k: v for k in ("segment", "variant", "device", "country") if (v := request.args.get(k, "").strip())}
    try:
        query = AudienceSchema().load(args)
    except ValidationError as err:
        problems = [
            f"“{name}”: {' '.join(map(str, messages if isinstance(messages, list) else [messages]))}"
            for name, messages in err.messages.items()
        ]
        abort(400, "These recipients cannot be downloaded. " + "; ".join(problems))
    filters = {k: query[k] for k in ("variant", "device", "country")}
    members = audience(campaign, query["segment"], **filters)
    return csv_download(audience_csv(members), f"campaign-{campaign.id}-{query['segment']}")
