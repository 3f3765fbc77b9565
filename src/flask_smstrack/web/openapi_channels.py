"""The OpenAPI paths of channels (see api_channels.py): a campaign's edit,
links' QR codes, the channel comparison, and the 409 of the SMS endpoints
for campaigns of other channels."""
from __future__ import annotations

from apispec import APISpec

from ..models.channels import CHANNELS
from ..reports.channels import CHANNEL_COLUMNS
from ..schemas import MAX_ID, CampaignSchema

_ERRORS = {
    "description": "Invalid input: each field with its messages.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}},
}
_LINK_ID = [{"name": "link_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}]
_QR_QUERY = [
    {"name": "scale", "in": "query", "description": "Pixels per module (square) of the code",
     "schema": {"type": "integer", "minimum": 1, "maximum": 40, "default": 8}},
    {"name": "border", "in": "query", "description": "Blank border around the code, in modules",
     "schema": {"type": "integer", "minimum": 0, "maximum": 16, "default": 4}},
]
_IMAGES = {
    "svg": {"image/svg+xml": {"schema": {"type": "string"}}},
    "png": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
}
#: The SMS operations (path, method): 409 for a campaign of another channel.
SMS_ONLY_OPERATIONS = (
    ("/campaigns/{campaign_id}/recipients", "get"), ("/campaigns/{campaign_id}/recipients", "post"),
    ("/campaigns/{campaign_id}/variants", "post"), ("/campaigns/{campaign_id}/messages/prepare", "post"),
    ("/campaigns/{campaign_id}/messages", "get"), ("/campaigns/{campaign_id}/messages/export", "post"),
)


def channel_paths(spec: APISpec) -> None:
    """Add the channel operations to ``spec``."""
    spec.components.schema("CampaignEdit", schema=CampaignSchema(partial=True))
    patch = {
        "summary": "Change a campaign: the fields given change, the others stay",
        "description": (
            f"channel is one of {', '.join(CHANNELS)}. Campaigns of other channels than sms have no message "
            "template, price per message or per segment (400): give their total cost. An SMS campaign with "
            "recipients or variants stays one (409). A cost given replaces the campaign's other kind of cost."
        ),
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/CampaignEdit"}}}},
        "responses": {"200": {"description": "The campaign as it is now", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Campaign"}}}}, "400": _ERRORS, "409": _ERRORS},
    }
    # Added to the path's GET (its parameters are set already).
    spec.path("/campaigns/{campaign_id}", operations={"patch": patch})
    for fmt, content in _IMAGES.items():
        spec.path(f"/links/{{link_id}}/qr.{fmt}", parameters=_LINK_ID, operations={
            "get": {
                "summary": f"The QR code of the link's short URL, as {fmt.upper()}",
                "parameters": _QR_QUERY,
                "responses": {"200": {"description": "The image", "content": content}, "400": _ERRORS},
            },
        })
    spec.path("/links/{link_id}/qr", parameters=_LINK_ID, operations={
        "get": {
            "summary": "The QR code of the link's short URL: ?format=svg (default) or png",
            "parameters": [{"name": "format", "in": "query", "schema": {"type": "string", "enum": ["svg", "png"]}},
                           *_QR_QUERY],
            "responses": {"200": {"description": "The image", "content": {**_IMAGES["svg"], **_IMAGES["png"]}},
                          "400": _ERRORS},
        },
    })
    spec.path("/reports/channels", operations={
        "get": {
            "summary": "The channel comparison: per channel, month and currency (?format=csv)",
            "description": (
                "Columns: " + ", ".join(c.key for c in CHANNEL_COLUMNS) + ". Each campaign counts in the month "
                "it was sent (or created) in ?tz=; its campaigns, clicks, conversions and cost in its currency's "
                "row, its revenue in the row of each currency it came in. Money is a decimal string, ROI a fraction."
            ),
            "parameters": [
                {"name": "tz", "in": "query", "description": "Timezone of the months (IANA name)",
                 "schema": {"type": "string"}},
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
            ],
            "responses": {"200": {"description": "A table (name, title, columns, rows, notes), or CSV", "content": {
                "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}},
                "400": _ERRORS},
        },
    })


def sms_only_conflicts(doc: dict) -> dict:
    """``doc`` with the 409 of :data:`SMS_ONLY_OPERATIONS` described."""
    for path, method in SMS_ONLY_OPERATIONS:
        operation = doc["paths"].get(path, {}).get(method)
        if operation is not None:
            operation["responses"].setdefault("409", _ERRORS)
    return doc
