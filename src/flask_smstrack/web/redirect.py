"""``GET /s/<code>``: record the click, answer 302."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request
from werkzeug.wrappers import Response

from ..schemas import CODE_RE
from ..state import get_state
from ..tracking.clicks import find_link, record_click, redirect_target

bp = Blueprint("smstrack_links", __name__)


def _cookie_attributes(config) -> tuple[str, str, str]:
    """The attribution cookie's name and its attributes without and with
    ``Secure``, written once: they only depend on the config."""
    parts = [f"Max-Age={int(config['SMSTRACK_COOKIE_DAYS']) * 86400}"]
    if config["SMSTRACK_COOKIE_DOMAIN"]:
        parts.append(f"Domain={config['SMSTRACK_COOKIE_DOMAIN']}")
    parts += ["HttpOnly", "Path=/", "SameSite=Lax"]
    plain = "; ".join(parts)
    return config["SMSTRACK_COOKIE_NAME"], plain, f"{plain}; Secure"


@bp.get("/<code>")
def follow(code: str) -> Response:
    state = get_state()
    config = current_app.config
    link = find_link(code, state) if CODE_RE.match(code) else None
    if link is None:
        fallback = config["SMSTRACK_FALLBACK_URL"]
        if fallback:
            response = redirect(fallback, 302)
        else:
            response = current_app.make_response((render_template("smstrack/404.html", code=code), 404))
        response.headers["Cache-Control"] = "no-store"
        return response
    req = request._get_current_object()
    click_id, agent = record_click(link, req, state)
    headers = [("Location", redirect_target(link, click_id)), ("Cache-Control", "no-store")]
    if agent.kind == "human":
        extra = state.extra
        cookie = extra.get("cookie")
        if cookie is None:
            cookie = extra["cookie"] = _cookie_attributes(config)
        name, plain, secure = cookie
        wanted = config["SMSTRACK_COOKIE_SECURE"]
        is_secure = req.is_secure if wanted is None else wanted
        headers.append(("Set-Cookie", f"{name}={click_id}; {secure if is_secure else plain}"))
    return Response(status=302, headers=headers)
