"""The best-time report in the OpenAPI document (see openapi.py)."""
from __future__ import annotations

from apispec import APISpec

from ..schemas.timing import MAX_MIN_CAMPAIGNS, MAX_MIN_MESSAGES

_RATE = {"type": "number", "nullable": True}
_HOUR = {
    "type": "object",
    "properties": {
        "hour": {"type": "integer"}, "weekday": {"type": "string", "nullable": True},
        "local_time": {"type": "string"}, "messages": {"type": "integer"}, "unique_clicks": {"type": "integer"},
        "campaigns": {"type": "integer"}, "ctr": _RATE, "ctr_low": _RATE, "ctr_high": _RATE,
        "quiet": {"type": "boolean"}, "eligible": {"type": "boolean"}, "best": {"type": "boolean"},
    },
}


def timing_paths(spec: APISpec) -> None:
    """``GET /reports/best-time``."""
    spec.components.schema("BestTimeHour", _HOUR)
    hour = {"$ref": "#/components/schemas/BestTimeHour"}
    spec.components.schema("BestTime", {
        "type": "object",
        "properties": {
            "recommendation": {**hour, "nullable": True},
            "at": {"type": "string", "nullable": True, "description": "HH:MM, for send --at"},
            "summary": {"type": "string"},
            "reason": {"type": "string", "nullable": True, "description": "why nothing is recommended"},
            "campaigns": {"type": "integer"}, "messages": {"type": "integer"},
            "min_campaigns": {"type": "integer"}, "min_messages": {"type": "integer"},
            "quiet_hours": {"type": "string", "nullable": True},
            "hours": {"type": "array", "items": hour},
            "weekday_hours": {"type": "array", "items": hour},
            "clicks_by_local_time": {"type": "array", "items": {"type": "object", "properties": {
                "weekday": {"type": "string"}, "hour": {"type": "integer"}, "unique_clicks": {"type": "integer"}}}},
        },
    })
    spec.path("/reports/best-time", operations={
        "get": {
            "summary": "The best local hour to send: your past campaigns' CTR by the recipients' local hour of "
                       "sending, with 95% Wilson intervals; nothing (and the reason) without enough data",
            "parameters": [
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
                {"name": "min_campaigns", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_MIN_CAMPAIGNS}},
                {"name": "min_messages", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_MIN_MESSAGES}},
            ],
            "responses": {
                "200": {"description": "The recommendation and the per-hour table (CSV with format=csv)", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/BestTime"}},
                    "text/csv": {"schema": {"type": "string"}},
                }},
            },
        },
    })
