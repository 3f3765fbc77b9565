"""The OpenAPI description of ``POST /campaigns/{campaign_id}/delivery-report``
(kept apart from openapi.py, which is near its size limit)."""
from __future__ import annotations

from apispec import APISpec

from ..sms.report_import import FIELDS, PLATFORMS


def report_import_paths(spec: APISpec, id_parameters: list, errors: dict) -> None:
    spec.path("/campaigns/{campaign_id}/delivery-report", parameters=id_parameters, operations={
        "post": {
            "summary": "Import another SMS platform's delivery and click report (CSV) into the campaign whose "
                       "messages were exported for it: statuses and prices reach the report and the ROI",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "the report, CSV in UTF-8"},
                    "platform": {"type": "string", "enum": sorted(PLATFORMS), "default": "generic"},
                    "map": {"type": "array", "items": {"type": "string", "pattern": f"^.+=({'|'.join(FIELDS)})$"},
                            "description": "COLUMN=FIELD pairs that override the platform's column map"},
                },
            }}}},
            "responses": {
                "200": {"description": "matched, updated, clicked, cost, and errors with their line and column"},
                "400": errors,
            },
        },
    })
