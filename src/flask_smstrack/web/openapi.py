"""The OpenAPI document of the JSON API, generated from the marshmallow schemas."""
from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from ..config import Keys
from ..reports.listing import MAX_PER_PAGE, PER_PAGE, SORT_KEYS
from ..reports.terms import with_descriptions
from ..schemas import (
    AUDIENCE_SEGMENTS,
    MAX_ID,
    CampaignSchema,
    ConversionOutSchema,
    ConversionSchema,
    ConversionTokenSchema,
    LinkSchema,
    MessagePreviewSchema,
    RefundOutSchema,
    RefundSchema,
    VariantSchema,
)
from .openapi_timing import timing_paths
from .openapi_channels import channel_paths, sms_only_conflicts

_ERRORS = {
    "description": "Invalid input: each field with its messages.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}},
}


def _json(ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _body(ref: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


#: Ids in paths: an id beyond what the column holds is a 404, like any id that names nothing.
_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_ID = [{"name": "campaign_id", "in": "path", "required": True, "schema": _ID_SCHEMA}]
_CSV = {"text/csv": {"schema": {"type": "string"}}}


def build_spec(version: str, server_url: str) -> dict:
    spec = APISpec(
        title="flask-smstrack",
        version=version,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        servers=[{"url": server_url}],
        security=[{"bearer": []}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Campaign", schema=CampaignSchema)
    spec.components.schema("Link", schema=LinkSchema)
    spec.components.schema("ConversionIn", schema=ConversionSchema)
    spec.components.schema("Conversion", schema=ConversionOutSchema)
    spec.components.schema(
        "Errors",
        {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                }
            },
        },
    )
    spec.components.schema(
        "Report",
        {
            "type": "object",
            "description": "Rates are fractions; money is a decimal string; revenue is keyed by currency.",
            "properties": with_descriptions({
                **{k: {"type": "integer", "nullable": k in ("sent", "delivered", "reached", "segments", "undelivered")}
                   for k in ("campaign_id", "sent", "delivered", "reached", "clicks", "unique_clicks", "previews", "bots",
                             "human_confirmed", "forwards", "segments", "undelivered", "conversions",
                             "unattributed_conversions")},
                **{k: {"type": "number", "nullable": True} for k in ("ctr", "conversion_rate", "roi", "roas")},
                "opt_outs": {
                    "type": "integer",
                    "description": "Numbers that replied STOP (or another opt-out word) to the campaign's messages, "
                                   "each once; a later START does not take one back",
                },
                "opt_out_rate": {
                    "type": "number", "nullable": True,
                    "description": "opt_outs / delivered; null while nothing is known delivered",
                },
                **{k: {"type": "string", "nullable": True} for k in ("cost", "profit", "epc", "aov", "cost_per_conversion")},
                "currency": {"type": "string"},
                **{k: {"type": "object", "additionalProperties": {"type": "string"}} for k in (
                    "revenue", "revenue_verified", "revenue_unverified", "refunded")},
                "verified_revenue_only": {"type": "boolean"},
                "net_revenue": {
                    "type": "string",
                    "description": "Revenue in the campaign's currency net of refunds (verified only when the "
                                   "campaign counts verified revenue only): what profit, ROI, ROAS, EPC and AOV use",
                },
            }),
        },
    )
    spec.path(
        "/campaigns",
        operations={
            "get": {"summary": "List your campaigns", "responses": {"200": {"description": "Campaigns"}}},
            "post": {
                "summary": "Create a campaign",
                "requestBody": _body("Campaign"),
                "responses": {"201": _json("Campaign", "Created"), "400": _ERRORS},
            },
        },
    )
    spec.path("/campaigns/{campaign_id}", parameters=_ID, operations={
        "get": {"summary": "One campaign", "responses": {"200": _json("Campaign", "The campaign"), "404": _ERRORS}},
    })
    spec.path("/campaigns/{campaign_id}/links", parameters=_ID, operations={
        "get": {"summary": "The campaign's links", "responses": {"200": {"description": "Links"}}},
        "post": {
            "summary": "Create a tracked link",
            "requestBody": _body("Link"),
            "responses": {"201": _json("Link", "Created"), "400": _ERRORS, "409": _ERRORS},
        },
    })
    _link_edit_path(spec)
    spec.path("/campaigns/{campaign_id}/report", parameters=_ID, operations={
        "get": {"summary": "The campaign's numbers", "responses": {"200": _json("Report", "Report"), "404": _ERRORS}},
    })
    spec.components.schema("MessagePreviewIn", schema=MessagePreviewSchema)
    spec.path("/messages/preview", operations={
        "post": {
            "summary": "Encoding and segments of a message",
            "requestBody": _body("MessagePreviewIn"),
            "responses": {
                "200": {"description": "encoding, characters, units, segments, per_segment, remaining; warnings: "
                                       "a list of sentences (the short link adds a segment, no opt-out instruction "
                                       "such as \"Reply STOP to opt out\", or that sending will be refused)"},
                "400": _ERRORS,
                "404": _ERRORS,
            },
        },
    })
    spec.path("/campaigns/table", operations={
        "get": {
            "summary": "The campaign list with its numbers, sorted and paged (?format=csv writes every row)",
            "parameters": [
                {"name": "start", "in": "query", "description": "First send date (YYYY-MM-DD, in ?tz=)",
                 "schema": {"type": "string", "format": "date"}},
                {"name": "end", "in": "query", "description": "Last send date (YYYY-MM-DD, in ?tz=)",
                 "schema": {"type": "string", "format": "date"}},
                {"name": "tz", "in": "query", "description": "Timezone of the send dates (IANA name)",
                 "schema": {"type": "string"}},
                {"name": "sort", "in": "query", "description": "Money sorts within each campaign's currency",
                 "schema": {"type": "string", "enum": list(SORT_KEYS), "default": "date"}},
                {"name": "dir", "in": "query", "description": "Default: asc for name, desc for the others",
                 "schema": {"type": "string", "enum": ["asc", "desc"]}},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                {"name": "per_page", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": PER_PAGE}},
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
            ],
            "responses": {
                "200": {
                    "description": "A table (name, title, columns, rows, notes) with total (campaigns the filter "
                                   "keeps), page, per_page, pages, sort and dir; or CSV with every row",
                },
                "400": _ERRORS,
            },
        },
    })
    spec.path("/campaigns/{campaign_id}/recipients", parameters=_ID, operations={
        "post": {
            "summary": "Import recipients from CSV (a phone column; other columns become attributes, with "
                       "?keep_columns=true only those the campaign's templates use)",
            "parameters": [
                {"name": "keep_columns", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}},
            ],
            "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
            "responses": {"200": {"description": "imported, merged, and errors with their line numbers"}, "400": _ERRORS},
        },
        "get": {
            "summary": "Recipients for the next send, by what they did (?segment=, ?variant=, ?device=, ?country=, ?format=csv)",
            "parameters": [
                {"name": "segment", "in": "query", "schema": {"type": "string", "enum": list(AUDIENCE_SEGMENTS)}},
                {"name": "variant", "in": "query", "schema": {"type": "string"}},
                {"name": "device", "in": "query", "schema": {"type": "string"}},
                {"name": "country", "in": "query", "schema": {"type": "string"}},
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
            ],
            "responses": {"200": {"description": "Recipients"}, "400": _ERRORS},
        },
    })
    spec.components.schema("Variant", schema=VariantSchema)
    spec.path("/campaigns/{campaign_id}/variants", parameters=_ID, operations={
        "get": {"summary": "The campaign's message variants", "responses": {"200": {"description": "Variants"}}},
        "post": {
            "summary": "Add a message variant (A/B/n test)",
            "requestBody": _body("Variant"),
            "responses": {"201": _json("Variant", "Created"), "400": _ERRORS, "409": _ERRORS},
        },
    })
    spec.path("/campaigns/{campaign_id}/variants/{variant_id}", parameters=_ID + [
        {"name": "variant_id", "in": "path", "required": True, "schema": _ID_SCHEMA},
    ], operations={
        "delete": {"summary": "Remove a variant before sending", "responses": {"204": {"description": "Removed"}, "409": _ERRORS}},
    })
    spec.path("/campaigns/{campaign_id}/messages/prepare", parameters=_ID, operations={
        "post": {
            "summary": "Render every unsent recipient's message: variant, own links, segments",
            "responses": {"200": {"description": "Counts, segments and cost"}, "409": _ERRORS},
        },
    })
    spec.path("/campaigns/{campaign_id}/messages", parameters=_ID, operations={
        "get": {
            "summary": "The rendered messages (phone, message, variant) as CSV, or JSON with ?format=json; changes nothing",
            "parameters": [
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["csv", "json"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10_000}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {
                "200": {"description": "Messages", "content": {**_CSV, "application/json": {"schema": {"type": "object"}}}},
                "400": _ERRORS,
                "404": _ERRORS,
            },
        },
    })
    spec.path("/campaigns/{campaign_id}/messages/export", parameters=_ID, operations={
        "post": {
            "summary": "The rendered messages as CSV for another SMS platform: the ready ones count as sent from then on",
            "responses": {"200": {"description": "Messages", "content": _CSV}, "404": _ERRORS},
        },
    })
    spec.path("/campaigns/{campaign_id}/tables", parameters=_ID, operations={
        "get": {"summary": "The names of the campaign's report tables", "responses": {"200": {"description": "Names"}}},
    })
    spec.path("/campaigns/{campaign_id}/tables/{name}", parameters=_ID + [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
    ], operations={
        "get": {"summary": "One report table (?tz=, ?format=csv)", "responses": {"200": {"description": "A table"}, "404": _ERRORS}},
    })
    spec.path("/conversions", operations={
        "get": {"summary": "Recent conversions", "responses": {"200": {"description": "Conversions"}}},
        "post": {
            "summary": "Record a verified server-side conversion",
            "requestBody": _body("ConversionIn"),
            "responses": {
                "201": _json("Conversion", "Recorded"),
                "200": _json("Conversion", "Already recorded (duplicate), or an unverified record of the order id "
                                           "made verified (upgraded)"),
                "400": _ERRORS,
            },
        },
    })
    _conversion_paths(spec)
    _opt_out_paths(spec)
    _subject_paths(spec)
    timing_paths(spec)
    from .openapi_report_import import report_import_paths
    from .openapi_webhooks import webhook_paths

    report_import_paths(spec, _ID, _ERRORS)
    channel_paths(spec)
    webhook_paths(spec)
    from .api_destinations import destination_paths

    destination_paths(spec, _ID_SCHEMA, _ERRORS)
    return _with_common_errors(sms_only_conflicts(spec.to_dict()))


def _conversion_paths(spec: APISpec) -> None:
    """Refunds and conversion tokens."""
    spec.components.schema("RefundIn", schema=RefundSchema)
    spec.components.schema("Refund", schema=RefundOutSchema)
    spec.path("/conversions/{conversion_id}/refund", parameters=[
        {"name": "conversion_id", "in": "path", "required": True, "schema": _ID_SCHEMA},
    ], operations={
        "post": {
            "summary": "Refund a verified conversion, all that is left (no amount) or part of it",
            "requestBody": _body("RefundIn"),
            "responses": {
                "201": _json("Refund", "Refunded, with the conversion"),
                "200": _json("Refund", "Already refunded with this external_id"),
                "400": _ERRORS, "404": _ERRORS, "409": _ERRORS,
            },
        },
    })
    spec.components.schema("ConversionTokenIn", schema=ConversionTokenSchema)
    spec.components.schema("ConversionToken", {
        "type": "object",
        "properties": {"token": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}},
    })
    spec.path("/conversion-tokens", operations={
        "post": {
            "summary": "A signed token for a thank-you page: posted with the same event, order_id, revenue and "
                       "currency, the snippet's conversion is stored verified",
            "requestBody": _body("ConversionTokenIn"),
            "responses": {"200": _json("ConversionToken", "The token"), "400": _ERRORS},
        },
    })


def _opt_out_paths(spec: APISpec) -> None:
    """The suppression list."""
    from .optout_schemas import MAX_PER_PAGE, PER_PAGE, OptOutSchema, PhonesSchema

    spec.components.schema("OptOut", schema=OptOutSchema)
    spec.components.schema("PhonesIn", schema=PhonesSchema)
    invalid = {"type": "array", "items": {"type": "object", "properties": {
        "phone": {"type": "string"}, "line": {"type": "integer"}, "message": {"type": "string"}}}}
    counts = {
        name: {"type": "object",
               "properties": {first: {"type": "integer"}, second: {"type": "integer"}, "invalid": invalid}}
        for name, first, second in (("OptOutsAdded", "added", "already"), ("OptOutsRemoved", "removed", "absent"))
    }
    for name, schema in counts.items():
        spec.components.schema(name, schema)
    spec.path("/opt-outs", operations={
        "get": {
            "summary": "Your suppression list (numbers as their last two digits), newest first, paged",
            "parameters": [
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
                {"name": "per_page", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": PER_PAGE}},
            ],
            "responses": {"200": {"description": "opt_outs, total, page, per_page and pages", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "opt_outs": {"type": "array", "items": {"$ref": "#/components/schemas/OptOut"}},
                    **{k: {"type": "integer"} for k in ("total", "page", "per_page", "pages")}}}}}}},
        },
        "post": {
            "summary": "Never text these numbers from your campaigns; invalid ones are listed",
            "requestBody": _body("PhonesIn"),
            "responses": {"200": _json("OptOutsAdded", "added, already on the list, invalid")},
        },
    })
    spec.path("/opt-outs/remove", operations={
        "post": {
            "summary": "Take numbers off your suppression list (they opted back in)",
            "requestBody": _body("PhonesIn"),
            "responses": {"200": _json("OptOutsRemoved", "removed, not on the list, invalid")},
        },
    })
    spec.path("/opt-outs/import", operations={
        "post": {
            "summary": "Add the numbers of a CSV file (a phone column) to your suppression list",
            "parameters": [{"name": "region", "in": "query", "schema": {"type": "string", "pattern": "^[A-Z]{2}$"}}],
            "requestBody": {"required": True, "content": _CSV},
            "responses": {"200": _json("OptOutsAdded", "added, already on the list, and invalid lines")},
        },
    })
def _link_edit_path(spec: APISpec) -> None:
    """``PATCH /links/{link_id}``."""
    from .link_schemas import LinkUpdateSchema

    spec.components.schema("LinkEdit", schema=LinkUpdateSchema)
    spec.path("/links/{link_id}", parameters=[{"name": "link_id", "in": "path", "required": True, "schema": _ID_SCHEMA}], operations={
        "patch": {
            "summary": "Change a campaign link: the fields given change, the others stay",
            "description": (
                f"A disabled link, or one past its expires_at (ISO 8601 with its UTC offset; null clears it), records no "
                "click and answers a 302 to its campaign's fallback_url (set when the campaign is created), else to "
                f"{Keys.FALLBACK_URL}, else a 410 page. Recipients' own links follow their campaign link. The change "
                f"is seen at once by the process that made it and by the others within {Keys.LINK_CACHE_TTL} "
                "seconds. A recipient's own link cannot be changed by itself (409)."
            ),
            "requestBody": _body("LinkEdit"),
            "responses": {"200": _json("Link", "The link as it is now"), "400": _ERRORS, "409": _ERRORS},
        },
    })


def _subject_paths(spec: APISpec) -> None:
    """One person's data, admin only; the number goes in the body."""
    from .api_subjects import SubjectSchema

    spec.components.schema("Subject", schema=SubjectSchema)
    spec.components.schema("SubjectExport", {
        "type": "object",
        "properties": {
            name: {"type": "array", "items": {"type": "object"}}
            for name in ("recipients", "links", "clicks", "conversions", "suppressions", "opt_out_events")
        },
    })
    spec.components.schema("SubjectErasure", {
        "type": "object",
        "properties": {
            "phone_tail": {"type": "string"},
            "erased": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    })
    for action, ref, summary in (
        ("export", "SubjectExport", "Everything stored about a phone number, across every owner (admin only)"),
        ("erase", "SubjectErasure", "Erase what is stored about a phone number and suppress it for every owner "
                                    "that had it; report totals stay (admin only)"),
    ):
        spec.path(f"/subjects/{action}", operations={
            "post": {
                "summary": summary,
                "requestBody": _body("Subject"),
                "responses": {"200": _json(ref, "Done"), "400": _ERRORS, "403": _ERRORS},
            },
        })


def _with_common_errors(doc: dict) -> dict:
    """Every operation answers 401 without a valid key and 429 beyond the
    caller's rate (``SMSTRACK_RATELIMIT_API``); one with a path id
    404 for an id that names nothing it may see; one with a body 400, 413
    (too large) and 415 (another content type); one with query parameters 400."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ["401", "429"]
            if "{" in path:
                codes.append("404")
            if "requestBody" in operation:
                codes += ["400", "413", "415"]
            if operation.get("parameters"):
                codes.append("400")
            for code in codes:
                operation["responses"].setdefault(code, _ERRORS)
    return doc
