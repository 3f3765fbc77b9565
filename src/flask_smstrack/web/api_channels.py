"""Channels on the JSON API (on the API blueprint, see api.py): a
campaign's edit (its channel...), the QR code of a link, the channel
comparison, and the SMS endpoints' answer for other campaigns."""
from __future__ import annotations

from flask import current_app, g, jsonify, request
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ..config import Keys
from ..errors import Conflict, InvalidInput
from ..manage import get_campaign, update_campaign
from ..models.channels import SMS_ONLY_FIELDS, channel_change_problem, is_sms, sms_only_message
from ..reports.channels import channel_table
from ..reports.export import csv_download, table_csv, table_json
from ..schemas import CampaignSchema
from ..schemas.channels import QrSchema, sms_only_errors
from ..tracking.qr import QR_MIMETYPES, qr_image
from .api import _campaign_or_404, _format_arg, _load, _tz_arg, bp
from .api_links import link_or_404

#: The endpoints that only SMS campaigns have: 409 for the others.
SMS_ONLY_ENDPOINTS = frozenset(
    f"smstrack_api.{name}"
    for name in (
        "recipients_import", "recipients_audience", "variants_create", "messages_prepare", "messages_list",
        "messages_export",
    )
)


@bp.before_request
def _sms_only() -> None:
    if request.endpoint not in SMS_ONLY_ENDPOINTS or not request.view_args:
        return
    campaign = get_campaign(request.view_args["campaign_id"])
    if campaign is not None and g.smstrack_principal.can_see(campaign) and not is_sms(campaign):
        raise Conflict({"channel": [sms_only_message(campaign)]})


class _CampaignEdit:
    """A partial :class:`~flask_smstrack.schemas.CampaignSchema`, for :func:`~.api._load`."""

    @staticmethod
    def load(data: dict) -> dict:
        result = CampaignSchema(partial=True).load(data)
        if not result:
            names = ", ".join(sorted(CampaignSchema().load_fields))
            raise ValidationError({"_schema": [f"Give at least one of: {names}."]})
        return result


@bp.patch("/campaigns/<int:campaign_id>")
def campaigns_update(campaign_id: int) -> Response:
    """Change a campaign: the fields given change, the others stay. A cost
    given replaces the campaign's other kind of cost."""
    campaign = _campaign_or_404(campaign_id)
    data = _load(_CampaignEdit())
    channel = data.get("channel", campaign.channel)
    kept = {name: data.get(name, getattr(campaign, name)) for name in SMS_ONLY_FIELDS}
    if any(data.get(name) is not None for name in ("cost", "cost_per_message", "cost_per_segment")):
        kept = {**kept, "cost_per_message": data.get("cost_per_message"), "cost_per_segment": data.get("cost_per_segment")}
    errors = sms_only_errors(kept, channel)
    if errors:
        raise InvalidInput({name: [f"{messages[0]} Set it to null first."] if name not in data else messages
                            for name, messages in errors.items()})
    if problem := channel_change_problem(campaign, channel):
        raise Conflict({"channel": [problem]})
    return jsonify(CampaignSchema().dump(update_campaign(campaign, data)))


def _qr(link_id: int, fmt: str | None) -> Response:
    link = link_or_404(link_id)
    try:
        query = QrSchema().load(request.args.to_dict())
    except ValidationError as err:
        raise InvalidInput(err.messages) from None
    fmt = fmt or query["format"] or "svg"
    if query["format"] not in (None, fmt):
        raise InvalidInput({"format": [f"This address gives {fmt}; leave format out, or use /qr?format=."]})
    body = qr_image(link, fmt, scale=query["scale"], border=query["border"])
    return Response(body, mimetype=QR_MIMETYPES[fmt], headers={
        "Content-Disposition": f'inline; filename="link-{link.id}-qr.{fmt}"',
        "Cache-Control": "private, max-age=300",
    })


@bp.get("/links/<int:link_id>/qr.svg")
def links_qr_svg(link_id: int) -> Response:
    """The QR code of the link's short URL, as SVG."""
    return _qr(link_id, "svg")


@bp.get("/links/<int:link_id>/qr.png")
def links_qr_png(link_id: int) -> Response:
    """The QR code of the link's short URL, as PNG."""
    return _qr(link_id, "png")


@bp.get("/links/<int:link_id>/qr")
def links_qr(link_id: int) -> Response:
    """The QR code of the link's short URL: ``?format=svg`` (default) or ``png``."""
    return _qr(link_id, None)


@bp.get("/reports/channels")
def reports_channels() -> Response:
    """The channel comparison (per channel, month and currency) of the
    campaigns the caller may see; ``?tz=`` for the months, ``?format=csv``."""
    fmt = _format_arg()
    p = g.smstrack_principal
    table = channel_table(p.owner_id, is_admin=p.is_admin, tz=_tz_arg() or current_app.config[Keys.TIMEZONE])
    if fmt == "csv":
        return csv_download(table_csv(table), "channels")
    return jsonify(table_json(table))
