"""``GET /api/v1/links/<id>/destinations``: a link's landing-page test (on
the API blueprint, see api.py); ``?format=csv`` for the CSV."""
from __future__ import annotations

from apispec import APISpec
from werkzeug.wrappers import Response

from ..reports.destinations import destination_test
from .api import bp, table_response
from .api_links import link_or_404


@bp.get("/links/<int:link_id>/destinations")
def link_destinations(link_id: int) -> Response:
    """The link's destinations compared on visitors, conversion rate and
    revenue per click, with the A/B test's verdict."""
    link = link_or_404(link_id)
    if link.parent_id is not None:
        link = link_or_404(link.parent_id)
    return table_response(destination_test(link), f"link-{link.id}-destinations")


def destination_paths(spec: APISpec, id_schema: dict, errors: dict) -> None:
    """The endpoint in the OpenAPI document."""
    spec.path("/links/{link_id}/destinations", parameters=[
        {"name": "link_id", "in": "path", "required": True, "schema": id_schema},
    ], operations={
        "get": {
            "summary": "A link's landing-page test: each destination's visitors, conversion rate and revenue per "
                       "click, with the verdict (?format=csv)",
            "parameters": [
                {"name": "format", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["json", "csv"]}},
            ],
            "responses": {"200": {"description": "A table"}, "404": errors},
        },
    })
