"""What every dashboard page shares: the blueprint, its error pages, the
signed-in principal, the campaign it may see, and the timezone and date
arguments of the query string."""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from flask import (
    Blueprint,
    current_app,
    g,
    render_template,
    request,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, generate_csrf
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from ...auth import Principal, principal_from_user
from ...config import Keys
from ...errors import Forbidden, NotFound
from ...manage import (
    get_campaign,
)
from ...models import Campaign
from ...schemas import (
    is_timezone,
)
from ...state import get_state
from ..http import check_request_values

bp = Blueprint("smstrack_dashboard", __name__)


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    return {"smstrack_csrf": generate_csrf, "smstrack_builtin_login": get_state().builtin_login}


def error_page(error: HTTPException) -> tuple[str, int]:
    return render_template("smstrack/error.html", error=error), error.code or 500


# The dashboard's own page for Werkzeug's errors and Flask-WTF's CSRFError
# (when the host app runs CSRFProtect); a SmsTrackError renders the same
# page by itself (see below), unless the host app handles it.
for _error in (CSRFError, 400, 403, 404):
    bp.register_error_handler(_error, error_page)


@bp.before_request
def _error_page_template() -> None:
    g.smstrack_error_template = "smstrack/error.html"


bp.before_request(check_request_values)


def dashboard_principal() -> Principal:
    principal = principal_from_user(current_user._get_current_object())
    if principal is None:
        raise Forbidden("Your account may not use the SMS tracking dashboard. Ask an administrator for access.")
    return principal


def campaign_or_404(campaign_id: int) -> Campaign:
    principal = dashboard_principal()
    campaign = get_campaign(campaign_id)
    if campaign is None or not principal.can_see(campaign):
        raise NotFound(f"There is no campaign {campaign_id}, or it belongs to someone else.")
    return campaign


def default_tz() -> str:
    return current_app.config[Keys.TIMEZONE]


def tz_arg() -> tuple[str, str | None]:
    """The ``?tz=`` of the request, or the default timezone and a message."""
    raw = request.args.get("tz", "").strip()
    if not raw:
        return default_tz(), None
    if not is_timezone(raw):
        return default_tz(), (
            f"Unknown timezone “{raw[:64]}”: use a name such as Europe/Paris or America/New_York."
            f" Showing {default_tz()} instead."
        )
    return raw, None


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    regions = ("Africa/", "America/", "Antarctica/", "Asia/", "Atlantic/", "Australia/", "Europe/", "Indian/", "Pacific/")
    return ("UTC", *sorted(n for n in available_timezones() if n.startswith(regions)))


def local(moment: dt.datetime | None, tz: str) -> dt.datetime | None:
    return None if moment is None else moment.astimezone(ZoneInfo(tz))


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def date_arg(name: str, label: str) -> tuple[dt.date | None, str | None]:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None, None
    try:
        if not _DATE_RE.match(raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw), None
    except ValueError:
        return None, f"The {label} date “{raw[:40]}” is not a date: use YYYY-MM-DD, for example 2024-03-31."


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


def field_errors(err: ValidationError) -> dict[str, list[str]]:
    messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
    return {field: _flat_messages(value) for field, value in messages.items()}


def expired(form: FlaskForm) -> dict[str, list[str]]:
    return {"_schema": ["The form expired; please submit it again."]} if form.errors else {}


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"
