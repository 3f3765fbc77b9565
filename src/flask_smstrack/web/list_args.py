"""The campaign list's query string (``sort``, ``dir``, ``page``,
``per_page``), read alike by the dashboard and the API."""
from __future__ import annotations

from typing import Any, Mapping

from ..reports.listing import MAX_PER_PAGE, PER_PAGE, SORT_KEYS


def descending_first(sort: str) -> bool:
    """Whether ``sort`` starts high to low: all but the name do."""
    return sort != "name"


def _whole(raw: str | None, low: int, high: int | None) -> int | None:
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 9 or int(raw) < low or (high is not None and int(raw) > high):
        raise ValueError(raw)
    return int(raw)


def list_args(args: Mapping[str, str], *, per_page: bool = True) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``(values, errors)``: ``sort``, ``descending``, ``page`` and
    ``per_page`` as :func:`~flask_smstrack.reports.listing.campaign_list`
    takes them, the defaults where the query string says nothing or says
    something wrong, and the messages for what was wrong, by parameter.
    ``per_page=False`` ignores the parameter (the dashboard's pages are fixed)."""
    errors: dict[str, list[str]] = {}
    sort = args.get("sort") or "date"
    if sort not in SORT_KEYS:
        errors["sort"] = [f"Unknown sort “{sort[:40]}”: use one of {', '.join(SORT_KEYS)}."]
        sort = "date"
    direction = args.get("dir") or ("desc" if descending_first(sort) else "asc")
    if direction not in ("asc", "desc"):
        errors["dir"] = [f"dir must be asc or desc, not “{direction[:40]}”."]
        direction = "desc" if descending_first(sort) else "asc"
    values: dict[str, Any] = {"sort": sort, "descending": direction == "desc", "page": 1, "per_page": PER_PAGE}
    limits = {"page": (1, None)}
    if per_page:
        limits["per_page"] = (1, MAX_PER_PAGE)
    for name, (low, high) in limits.items():
        raw = args.get(name)
        try:
            value = _whole(raw, low, high)
        except ValueError:
            bounds = f"from {low} to {high}" if high else f"from {low}"
            errors[name] = [f"{name} must be a whole number {bounds}, not “{(raw or '')[:40]}”."]
            continue
        if value is not None:
            values[name] = value
    return values, errors
