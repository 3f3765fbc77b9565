"""``GET /s/<code>``: record the click, answer 302."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, redirect, render_template, request
from werkzeug.wrappers import Response

from .schemas import CODE_RE
from .tracking import find_link, record_click, redirect_target

logger = logging.getLogger("flask_smstrack")

bp = Blueprint("smstrack_links", __name__)


@bp.get("/<code>")
def follow(code: str) -> Response:
    link = find_link(code) if CODE_RE.match(code) else None
    if link is None:
        fallback = current_app.config["SMSTRACK_FALLBACK_URL"]
        if fallback:
            response = redirect(fallback, 302)
        else:
            response = current_app.make_response((render_template("smstrack/404.html", code=code), 404))
        response.headers["Cache-Control"] = "no-store"
        return response
    click_id, agent = record_click(link, request)
    response = Response(status=302, headers={"Location": redirect_target(link, click_id), "Cache-Control": "no-store"})
    if agent.kind == "human":
        config = current_app.config
        secure = config["SMSTRACK_COOKIE_SECURE"]
        response.set_cookie(
            config["SMSTRACK_COOKIE_NAME"],
            click_id,
            max_age=config["SMSTRACK_COOKIE_DAYS"] * 86400,
            domain=config["SMSTRACK_COOKIE_DOMAIN"],
            secure=request.is_secure if secure is None else secure,
            httponly=True,
            samesite="Lax",
        )
    return response
