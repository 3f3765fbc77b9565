"""Creating and editing campaigns (with their message variants and live
message previews) and links. Fields are validated by the same marshmallow
schemas as the JSON API."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ...auth import Principal
from ...config import Keys
from ...errors import NotFound
from ...manage import (
    CodeTaken,
    create_campaign,
    create_link,
    forget_link,
    list_campaigns,
    short_url,
    sync_variants,
    update_link,
)
from ...models import Campaign, Link
from ...models.channels import CHANNEL_CHOICES, channel_change_problem
from ...schemas import (
    UTM_KEYS,
    CampaignSchema,
    LinkSchema,
    VariantSchema,
    format_money,
)
from ...state import get_state
from ..link_schemas import load_link_update
from .base import bp, campaign_or_404, dashboard_principal, default_tz, expired, field_errors, local
from .destinations import destination_errors, destination_rows, posted_destinations


class CampaignForm(FlaskForm):
    """CSRF only: the fields are validated by :class:`.schemas.CampaignSchema`."""


class LinkForm(FlaskForm):
    """CSRF only: the fields are validated by :class:`.schemas.LinkSchema`."""


_CAMPAIGN_FIELDS = (
    "name", "channel", "currency", "cost", "cost_per_message", "cost_per_segment", "sent", "sent_at", "message_template",
    "verified_revenue_only", "fallback_url", "provider",
)


#: Variant slots on the campaign form (an A/B/C/D test at most there).
_VARIANT_SLOTS = 4


_MONEY_FIELDS = ("cost", "cost_per_message", "cost_per_segment")


def _campaign_values(campaign: Campaign, tz: str) -> dict[str, str]:
    sent_at = local(campaign.sent_at, tz)
    return {
        "name": campaign.name,
        "channel": campaign.channel,
        "currency": campaign.currency,
        "cost": format_money(campaign.cost) if campaign.cost is not None else "",
        **{k: format_money(getattr(campaign, k)) if getattr(campaign, k) is not None else "" for k in _MONEY_FIELDS},
        "sent": str(campaign.sent) if campaign.sent is not None else "",
        "sent_at": f"{sent_at:%Y-%m-%dT%H:%M}" if sent_at else "",
        "message_template": campaign.message_template or "",
        "verified_revenue_only": "y" if campaign.verified_revenue_only else "",
        "fallback_url": campaign.fallback_url or "",
        "provider": campaign.provider or "",
    }


def _campaign_payload(values: dict[str, str], tz: str) -> dict[str, Any]:
    """Form strings as the API's JSON would carry them; the schema judges."""
    payload: dict[str, Any] = {
        "name": values["name"], "currency": values["currency"], "channel": values.get("channel") or "sms",
        "verified_revenue_only": values.get("verified_revenue_only") == "y",
        "fallback_url": values.get("fallback_url") or None,
        "provider": values.get("provider") or None,
    }
    for key in (*_MONEY_FIELDS, "message_template"):
        payload[key] = values[key] or None
    sent = re.sub(r"[\s,_]", "", values["sent"])
    payload["sent"] = int(sent) if sent.isdigit() else (values["sent"] or None)
    payload["sent_at"] = _moment(values["sent_at"], tz)
    return payload


def _moment(raw: str, tz: str) -> str | None:
    """A form's date and time, read in ``tz`` unless it has an offset, as
    ISO 8601 for the schema (which names what is wrong with anything else)."""
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.isoformat()


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
            for key, messages in field_errors(err).items():
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
    #: No opt-out instruction ("Reply STOP to opt out"): a warning, or that
    #: sending will be refused.
    opt_out_warning: str | None
    unknown: list[str]
    price: Decimal | None
    recipients: int | None
    cost: Decimal | None


def _message_previews(campaign: Campaign | None, values: dict[str, str], slots: list[dict[str, str]]) -> list[_MessagePreview]:
    """Each message version rendered with sample links: what it costs."""
    from ...sms.messages import attribute_names, preview, sample_values
    from ...sms.opt_out_text import opt_out_warning

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
                opt_out_warning(text), shown.unknown, per_message, share,
                per_message * share if per_message is not None and share is not None else None,
            )
        )
    return out


def _last_currency(principal: Principal) -> str:
    campaigns = list_campaigns(principal.owner_id, is_admin=False)
    return campaigns[0].currency if campaigns else "USD"


@bp.route("/campaigns/new", methods=["GET", "POST"])
@login_required
def campaign_new() -> str | Response | tuple[str, int]:
    principal = dashboard_principal()
    form = CampaignForm()
    tz = default_tz()
    values = {k: "" for k in _CAMPAIGN_FIELDS}
    values["currency"] = _last_currency(principal)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _form_values(_CAMPAIGN_FIELDS)
        if form.validate_on_submit():
            try:
                data = CampaignSchema().load(_campaign_payload(values, tz))
            except ValidationError as err:
                errors = field_errors(err)
            else:
                if request.form.get("action") != "preview":
                    created = create_campaign(data, principal.owner_id)
                    flash(f"Campaign “{created.name}” created. Now add the link that goes in your SMS.")
                    return redirect(url_for(".link_new", campaign_id=created.id))
        else:
            errors = expired(form)
    return render_template(
        "smstrack/campaign_form.html", form=form, values=values, errors=errors, campaign=None, tz=tz,
        previews=_message_previews(None, values, []), slots=[], channel_choices=CHANNEL_CHOICES,
    ), (400 if errors else 200)


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@login_required
def campaign_edit(campaign_id: int) -> str | Response | tuple[str, int]:
    campaign = campaign_or_404(campaign_id)
    form = CampaignForm()
    tz = default_tz()
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
                errors = field_errors(err)
                data = {}
            if problem := channel_change_problem(campaign, data.get("channel", campaign.channel)):
                errors["channel"] = [problem]
            wanted, variant_errors = ([], {}) if locked or data.get("channel", "sms") != "sms" else _load_variants(slots)
            errors.update(variant_errors)
            if not errors and request.form.get("action") != "preview":
                refallback = data.get("fallback_url", campaign.fallback_url) != campaign.fallback_url
                for key, value in data.items():
                    setattr(campaign, key, value)
                if not locked:
                    sync_variants(campaign, wanted)
                get_state().db.session.commit()
                for link in campaign.links if refallback else ():
                    forget_link(link)
                flash(f"Campaign “{campaign.name}” saved.")
                return redirect(url_for(".campaign", campaign_id=campaign.id))
        else:
            errors = expired(form)
    return render_template(
        "smstrack/campaign_form.html", form=form, values=values, errors=errors, campaign=campaign, tz=tz,
        previews=_message_previews(campaign, values, slots), slots=slots, locked=locked,
        channel_choices=CHANNEL_CHOICES,
    ), (400 if errors else 200)


_LINK_FIELDS = ("destination_url", "code", "expires_at", *UTM_KEYS)


@bp.route("/campaigns/<int:campaign_id>/links/new", methods=["GET", "POST"])
@login_required
def link_new(campaign_id: int) -> str | Response | tuple[str, int]:
    return _link_page(campaign_or_404(campaign_id), None)


@bp.route("/campaigns/<int:campaign_id>/links/<int:link_id>/edit", methods=["GET", "POST"])
@login_required
def link_edit(campaign_id: int, link_id: int) -> str | Response | tuple[str, int]:
    campaign = campaign_or_404(campaign_id)
    link = next((item for item in campaign.links if item.id == link_id), None)
    if link is None:
        raise NotFound(f"Campaign {campaign_id} has no link {link_id}.")
    return _link_page(campaign, link)


def _link_page(campaign: Campaign, link: Link | None) -> str | Response | tuple[str, int]:
    """The link form: a new link of ``campaign``, or a change to ``link``."""
    form = LinkForm()
    tz = default_tz()
    values = {k: "" for k in _LINK_FIELDS}
    append_click_id, disabled = True, False
    destinations = [{"label": d.label, "url": d.url, "weight": d.weight} for d in link.destinations] if link else []
    if link is not None:
        expires = local(link.expires_at, tz)
        values.update(link.utm or {}, destination_url=link.destination_url, code=link.code,
                      expires_at=f"{expires:%Y-%m-%dT%H:%M}" if expires else "")
        append_click_id, disabled = link.append_click_id, link.disabled
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _form_values(_LINK_FIELDS)
        append_click_id = request.form.get("append_click_id") == "y"
        disabled = request.form.get("disabled") == "y"
        destinations = posted_destinations(request.form)
        if form.validate_on_submit():
            utm = {k: values[k] for k in UTM_KEYS if values[k]}
            payload = {"destination_url": values["destination_url"], "append_click_id": append_click_id, "utm": utm or None,
                       "destinations": destinations}
            try:
                if link is None:
                    created = create_link(campaign, LinkSchema().load({**payload, "code": values["code"] or None}))
                else:
                    payload.update(disabled=disabled, expires_at=_moment(values["expires_at"], tz))
                    update_link(link, load_link_update(payload))
            except ValidationError as err:
                errors = field_errors(err)
                if isinstance(err.messages, dict) and "destinations" in err.messages:
                    errors["destinations"] = destination_errors(err.messages["destinations"])
            except CodeTaken:
                errors = {"code": [f"The code “{values['code']}” is already in use; choose another, or leave it empty for a random one."]}
            else:
                flash(f"Link created: {short_url(created)} — put it in your SMS." if link is None else f"Link {short_url(link)} saved.")
                return redirect(url_for(".campaign", campaign_id=campaign.id) + "#links")
        else:
            errors = expired(form)
    return render_template(
        "smstrack/link_form.html",
        form=form,
        campaign=campaign,
        link=link,
        values=values,
        append_click_id=append_click_id,
        disabled=disabled,
        tz=tz,
        errors=errors,
        utm_keys=UTM_KEYS,
        prefix=_short_url_prefix(),
        destinations=destination_rows(destinations),
    ), (400 if errors else 200)


def _short_url_prefix() -> tuple[str, str]:
    """The short URLs' common beginning, such as ``https://go.example.com``
    and ``/s/``."""
    base = current_app.config[Keys.BASE_URL] or request.host_url
    prefix = current_app.config[Keys.LINK_PREFIX].strip("/")
    return base.rstrip("/"), (f"/{prefix}/" if prefix else "/")
