"""The JSON API under ``/smstrack/api/v1``."""
from __future__ import annotations

import itertools

from flask import Blueprint, current_app, g, jsonify, request
from flask_wtf.csrf import validate_csrf
from marshmallow import ValidationError
from werkzeug.routing import PathConverter
from werkzeug.wrappers import Response
from wtforms.validators import ValidationError as CSRFInvalid

from ..auth import current_principal
from ..config import Keys
from ..errors import (
    JSON_ERROR_CODES,
    Conflict,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    UnsupportedMediaType,
    json_error,
)
from ..manage import (
    CodeTaken,
    add_variant,
    create_campaign,
    create_link,
    get_campaign,
    list_campaigns,
    remove_variant,
    short_url,
)
from ..models import Campaign, Link
from ..reports.audience import audience
from ..reports.campaign import CampaignData, campaign_report
from ..reports.export import (
    audience_csv,
    audience_json,
    campaign_list_csv,
    csv_download,
    messages_csv,
    table_csv,
    table_json,
)
from ..reports.listing import ListFilter, campaign_list, campaign_list_all
from ..reports.rollups import start_catch_up
from ..reports.tables import TABLES, campaign_list_table, campaign_table
from ..schemas import (
    MAX_OFFSET,
    AudienceSchema,
    CampaignSchema,
    LinkSchema,
    MessagePreviewSchema,
    VariantSchema,
    api_value,
    is_timezone,
    parse_body,
)
from ..sms.messages import (
    PrepareError,
    attribute_names,
    link_number,
    placeholders,
    prepare_messages,
    preview,
    sample_values,
)
from ..sms.opt_out_text import opt_out_warning
from ..sms.outbox import mark_exported, message_rows, ready_counts
from ..sms.segments import segment_info
from .http import CATCH_ALL_METHODS, check_request_values, csv_upload, read_limited_body, routed_methods
from .list_args import list_args

bp = Blueprint("smstrack_api", __name__)


class _AnyPath(PathConverter):
    """A path that may hold any character, a newline too, so that every
    unknown API path answers JSON."""

    regex = r"[^/][\s\S]*?"


bp.record_once(lambda setup: setup.app.url_map.converters.setdefault("smstrack_anypath", _AnyPath))
for _code in JSON_ERROR_CODES:
    bp.register_error_handler(_code, json_error)


@bp.before_request
def _authenticate() -> Response | None:
    if request.endpoint == "smstrack_api.openapi":
        return None
    principal, by_session = current_principal()
    if principal is None:
        raise Unauthorized(
            {"Authorization": ["Send 'Authorization: Bearer <api key>' (create one with flask smstrack create-api-key)."]},
            headers={"WWW-Authenticate": 'Bearer realm="smstrack"'},
        )
    if by_session and request.method not in ("GET", "HEAD", "OPTIONS"):
        # A browser sends the session cookie on its own: ask for the token.
        token = request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
        try:
            validate_csrf(token)
        except CSRFInvalid as err:
            raise InvalidInput(
                {"X-CSRFToken": [f"{err.args[0]} Send the page's CSRF token, or use an API key."]}
            ) from None
        if request.mimetype != "application/json":
            raise UnsupportedMediaType({"Content-Type": ["Send application/json."]})
    g.smstrack_principal = principal
    return None


bp.before_request(check_request_values)


def _load(schema) -> dict:
    """Validate the JSON body with ``schema`` or answer 400/413/415."""
    if request.mimetype not in ("application/json", ""):
        raise UnsupportedMediaType({"Content-Type": ["Send application/json."]})
    raw = read_limited_body()
    try:
        return schema.load(parse_body(raw))
    except ValidationError as err:
        raise InvalidInput(err.messages) from None


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = get_campaign(campaign_id)
    if campaign is None or not g.smstrack_principal.can_see(campaign):
        raise NotFound({"campaign_id": [f"No campaign {campaign_id}."]})
    return campaign


def _link_out(link: Link) -> dict:
    out = LinkSchema().dump(link)
    out["short_url"] = short_url(link)
    return out


@bp.get("/openapi.json")
def openapi() -> Response:
    from importlib.metadata import PackageNotFoundError, version

    from .openapi import build_spec

    try:
        release = version("flask-smstrack")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        release = "0"
    return jsonify(build_spec(release, request.base_url.rsplit("/", 1)[0]))


@bp.get("/campaigns")
def campaigns_list() -> Response:
    p = g.smstrack_principal
    return jsonify(campaigns=CampaignSchema(many=True).dump(list_campaigns(p.owner_id, is_admin=p.is_admin)))


@bp.post("/campaigns")
def campaigns_create() -> tuple[Response, int]:
    data = _load(CampaignSchema())
    campaign = create_campaign(data, g.smstrack_principal.owner_id)
    return jsonify(CampaignSchema().dump(campaign)), 201


@bp.get("/campaigns/table")
def campaigns_table() -> Response:
    """The campaign list with its numbers (as on the dashboard): ``?start=``
    and ``?end=`` (YYYY-MM-DD) filter on the send date, ``?sort=`` and
    ``?dir=`` order it, ``?page=`` and ``?per_page=`` page the JSON; the
    CSV (``?format=csv``) has every row."""
    import datetime as dt

    bounds, errors = {}, {}
    for name in ("start", "end"):
        raw = request.args.get(name)
        try:
            bounds[name] = dt.date.fromisoformat(raw) if raw else None
        except ValueError:
            errors[name] = ["Not a date: use YYYY-MM-DD."]
    values, wrong = list_args(request.args)
    errors.update(wrong)
    if errors:
        raise InvalidInput(errors)
    fmt = _format_arg()
    p = g.smstrack_principal
    f = ListFilter(p.owner_id, p.is_admin, bounds["start"], bounds["end"], _tz_arg() or current_app.config[Keys.TIMEZONE])
    order = {"sort": values["sort"], "descending": values["descending"]}
    if fmt == "csv":
        return csv_download(campaign_list_csv(campaign_list_all(f, **order)), "campaigns")
    result = campaign_list(f, **order, page=values["page"], per_page=values["per_page"])
    table = campaign_list_table([(r.campaign, r.report, r.date) for r in result.rows])
    return jsonify(
        **table_json(table),
        total=result.matching,
        page=result.page,
        per_page=result.per_page,
        pages=result.pages,
        sort=values["sort"],
        dir="desc" if values["descending"] else "asc",
    )


@bp.get("/campaigns/<int:campaign_id>")
def campaigns_get(campaign_id: int) -> Response:
    return jsonify(CampaignSchema().dump(_campaign_or_404(campaign_id)))


@bp.get("/campaigns/<int:campaign_id>/links")
def links_list(campaign_id: int) -> Response:
    campaign = _campaign_or_404(campaign_id)
    return jsonify(links=[_link_out(link) for link in campaign.links])


@bp.post("/campaigns/<int:campaign_id>/links")
def links_create(campaign_id: int) -> tuple[Response, int]:
    campaign = _campaign_or_404(campaign_id)
    data = _load(LinkSchema())
    try:
        link = create_link(campaign, data)
    except CodeTaken:
        raise Conflict({"code": [f"The code {data['code']!r} is already in use."]}) from None
    return jsonify(_link_out(link)), 201


@bp.post("/campaigns/<int:campaign_id>/recipients")
def recipients_import(campaign_id: int) -> tuple[Response, int]:
    """Import recipients from a CSV body (``text/csv``, a phone column);
    ``?keep_columns=true`` stores only the columns the templates use."""
    from ..sms.minimise import NoTemplate, used_columns
    from ..sms.recipients import ImportError_, import_recipients, read_csv

    campaign = _campaign_or_404(campaign_id)
    text, region = csv_upload()
    keep_columns = request.args.get("keep_columns", "false")
    if keep_columns not in ("true", "false"):
        raise InvalidInput({"keep_columns": ["Must be true or false."]})
    try:
        kept = used_columns(campaign) if keep_columns == "true" else None
    except NoTemplate as err:
        raise InvalidInput({"keep_columns": [f"{str(err)[0].upper()}{str(err)[1:]}."]}) from None
    try:
        result = import_recipients(campaign.id, read_csv(text), region=region, keep_columns=kept)
    except ImportError_ as err:
        raise InvalidInput({"_body": [str(err)]}) from None
    start_catch_up([campaign.id])
    body = {
        "imported": result.imported,
        "merged": result.merged,
        "suppressed": result.suppressed,
        "errors": [{"line": line, "message": message} for line, message in result.errors],
    }
    if kept is not None:
        body["dropped_columns"] = result.dropped_columns
    return jsonify(body), 200


@bp.get("/campaigns/<int:campaign_id>/report")
def campaigns_report(campaign_id: int) -> Response:
    return jsonify(campaign_report(_campaign_or_404(campaign_id)).as_dict())


def _tz_arg() -> str | None:
    tz = request.args.get("tz")
    if tz is None:
        return None
    if not is_timezone(tz):
        raise InvalidInput({"tz": [f"Unknown timezone {tz[:64]!r}; use an IANA name such as Europe/Paris."]})
    return tz


def _format_arg() -> str:
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput({"format": ["Must be json or csv."]})
    return fmt


def table_response(table, filename: str) -> Response:
    """A report table as JSON, or as a CSV download with ``?format=csv``."""
    if _format_arg() == "csv":
        return csv_download(table_csv(table), filename)
    return jsonify(table_json(table))


@bp.get("/campaigns/<int:campaign_id>/tables")
def tables_index(campaign_id: int) -> Response:
    _campaign_or_404(campaign_id)
    return jsonify(tables=sorted(TABLES))


@bp.get("/campaigns/<int:campaign_id>/tables/<name>")
def tables_get(campaign_id: int, name: str) -> Response:
    campaign = _campaign_or_404(campaign_id)
    if name not in TABLES:
        raise NotFound({"name": [f"No table {name!r}; one of: {', '.join(sorted(TABLES))}."]})
    table = campaign_table(CampaignData(campaign, _tz_arg()), name)
    return table_response(table, f"campaign-{campaign.id}-{name}")


@bp.post("/messages/preview")
def messages_preview() -> Response:
    """Encoding, characters and segments of a message, as an SMS network
    will count them. A template's ``{link}`` placeholders are filled with a
    short link as long as a real one first. ``warnings`` lists the link that
    adds a segment and a missing opt-out instruction."""
    data = _load(MessagePreviewSchema())
    text = data["text"]
    body: dict = {}
    numbers = [n for name in placeholders(text) if (n := link_number(name)) is not None]
    if data["campaign_id"] is not None:
        # As the campaign's first recipient would get it, with its links.
        campaign = _campaign_or_404(data["campaign_id"])
        shown = preview(
            text, values=sample_values(campaign.id), links=max([len(campaign.links), *(n + 1 for n in numbers)]),
            known=attribute_names(campaign.id),
        )
        info = shown.info
        body.update(
            rendered=shown.text, segments_without_links=shown.segments_without_links, warning=shown.warning(),
            unknown=shown.unknown,
        )
    elif numbers:
        shown = preview(text, links=max(numbers) + 1)
        info = shown.info
        body.update(rendered=shown.text, segments_without_links=shown.segments_without_links, warning=shown.warning())
    else:
        info = segment_info(text)
    body["warnings"] = [w for w in (body.get("warning"), opt_out_warning(text)) if w]
    return jsonify(
        encoding=info.encoding,
        characters=info.characters,
        units=info.units,
        segments=info.segments,
        per_segment=info.per_segment,
        remaining=info.remaining,
        **body,
    )


# -- variants, messages and audiences ---------------------------------------


def _unsent_or_409(campaign: Campaign) -> None:
    sent = campaign.messages_sent()
    if sent:
        raise Conflict({"variants": [f"{sent} messages are already sent: variants cannot change now."]})


@bp.get("/campaigns/<int:campaign_id>/variants")
def variants_list(campaign_id: int) -> Response:
    campaign = _campaign_or_404(campaign_id)
    return jsonify(variants=VariantSchema(many=True).dump(campaign.variants))


@bp.post("/campaigns/<int:campaign_id>/variants")
def variants_create(campaign_id: int) -> tuple[Response, int]:
    campaign = _campaign_or_404(campaign_id)
    data = _load(VariantSchema())
    _unsent_or_409(campaign)
    if any(v.name == data["name"] for v in campaign.variants):
        raise Conflict({"name": [f"The campaign already has a variant {data['name']!r}."]})
    variant = add_variant(campaign, data)
    return jsonify(VariantSchema().dump(variant)), 201


@bp.delete("/campaigns/<int:campaign_id>/variants/<int:variant_id>")
def variants_delete(campaign_id: int, variant_id: int) -> tuple[str, int]:
    campaign = _campaign_or_404(campaign_id)
    variant = next((v for v in campaign.variants if v.id == variant_id), None)
    if variant is None:
        raise NotFound({"variant_id": [f"No variant {variant_id} in this campaign."]})
    _unsent_or_409(campaign)
    remove_variant(variant)
    return "", 204


@bp.post("/campaigns/<int:campaign_id>/messages/prepare")
def messages_prepare(campaign_id: int) -> Response:
    """Give every unsent recipient a variant, links and a rendered message."""
    campaign = _campaign_or_404(campaign_id)
    try:
        result = prepare_messages(campaign)
    except PrepareError as err:
        raise Conflict({"message_template": [str(err)]}) from None
    start_catch_up([campaign.id])
    ready, segments = ready_counts(campaign.id)
    price = campaign.cost_per_segment
    return jsonify(
        prepared=result.prepared,
        assigned=result.assigned,
        links_created=result.links_created,
        link_adds_segment=result.link_adds_segment,
        per_variant=result.per_variant,
        suppressed=result.suppressed,
        no_consent=result.no_consent,
        ready=ready,
        segments=segments,
        cost=api_value(price * segments if price is not None else None, "money"),
    )


@bp.get("/campaigns/<int:campaign_id>/messages")
def messages_list(campaign_id: int) -> Response:
    """The rendered messages (phone, message, variant) as CSV, or JSON pages
    with ``?format=json&limit=&offset=``. Reading them changes nothing:
    ``POST .../messages/export`` counts them as sent."""
    campaign = _campaign_or_404(campaign_id)
    fmt = request.args.get("format", "csv")
    if fmt == "csv":
        return csv_download(messages_csv(message_rows(campaign)), f"campaign-{campaign.id}-messages")
    if fmt != "json":
        raise InvalidInput({"format": ["Must be csv or json."]})
    limit = min(max(request.args.get("limit", 100, type=int), 1), 10_000)
    offset = min(max(request.args.get("offset", 0, type=int), 0), MAX_OFFSET)
    rows = itertools.islice(message_rows(campaign), offset, offset + limit)
    return jsonify(messages=[{"phone": p, "message": m, "variant": v or None} for p, m, v in rows])


@bp.post("/campaigns/<int:campaign_id>/messages/export")
def messages_export(campaign_id: int) -> Response:
    """The rendered messages as CSV for upload to any SMS platform; the
    ready ones count as sent from then on."""
    campaign = _campaign_or_404(campaign_id)
    rows = message_rows(campaign)
    mark_exported(campaign.id)
    return csv_download(messages_csv(rows), f"campaign-{campaign.id}-messages")


@bp.get("/campaigns/<int:campaign_id>/recipients")
def recipients_audience(campaign_id: int) -> Response:
    """Recipients for the next send: ``?segment=`` clicked_not_converted,
    not_clicked, converted, clicked or all; ``?variant=``, ``?device=``,
    ``?country=``; JSON or ``?format=csv``."""
    campaign = _campaign_or_404(campaign_id)
    try:
        query = AudienceSchema().load(request.args.to_dict())
    except ValidationError as err:
        raise InvalidInput(err.messages) from None
    filters = {k: query[k] for k in ("variant", "device", "country")}
    if query["format"] == "csv":
        members = audience(campaign, query["segment"], **filters)
        return csv_download(audience_csv(members), f"campaign-{campaign.id}-{query['segment']}")
    members = audience(campaign, query["segment"], **filters, limit=query["limit"], offset=query["offset"])
    return jsonify(segment=query["segment"], recipients=[audience_json(m) for m in members])


@bp.route("/<smstrack_anypath:_rest>", methods=list(CATCH_ALL_METHODS))
def not_found(_rest: str) -> Response:
    """JSON for unknown API paths, and 405 for a known path with the wrong method."""
    allowed = routed_methods()
    if allowed:
        raise MethodNotAllowed(
            f"{request.method} is not allowed here; use {', '.join(allowed)}.", headers={"Allow": ", ".join(allowed)}
        )
    raise NotFound(f"No API endpoint at {request.path}.")


# The conversion, link edit, subject and opt-out endpoints live in their own modules, on this blueprint.
from . import (  # noqa: E402,F401
    api_channels,
    api_conversions,
    api_destinations,
    api_links,
    api_optouts,
    api_report_import,
    api_subjects,
    api_timing,
    api_webhooks,
)
