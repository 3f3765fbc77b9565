"""A campaign's Send page, and the progress of its background jobs (send,
link check) as JSON for the page's script.

With ``SMSTRACK_REDIS_URL`` the send is a job for ``flask smstrack worker``,
which survives the web process and goes on where it stopped when its worker
dies. Without Redis (a small business on SQLite, one machine, no worker) the
button still sends: on a thread of the web process that got the press
(:mod:`flask_smstrack.jobs.local`), followed by the page the same way; a
server restart stops it, and sending again goes on where it stopped.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from flask import current_app, jsonify, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField

from ...config import Keys
from ...errors import InvalidInput
from ...jobs.queue import Jobs
from ...jobs.tasks import check_links_view, send_view, start_send
from ...reports.timing import best_time
from ...sms.quiet import parse_clock
from ...sms.outbox import recipient_totals, unknown_count
from ...sms.providers import SendError, sender_of
from .base import bp, campaign_or_404


#: When the Send button sends: now, at the best local hour, or at a time of day.
NOW, BEST, AT = "now", "best", "at"


class SendForm(FlaskForm):
    """When to send (as ``send --at``): each recipient gets the message at
    that time on their own clock. Without a choice the send starts now."""

    #: ``now``, ``best`` or ``at`` (the page's radio buttons).
    when = StringField("When")
    at = StringField("Time of day (HH:MM)")


def _send_at(form: SendForm, owner_id: str | None) -> str | None:
    """The ``HH:MM`` the form asks for (``None``: now); :class:`InvalidInput`
    naming the field and what to do when it cannot be used."""
    when = (form.when.data or NOW).strip()
    if when not in (NOW, BEST, AT):
        raise InvalidInput(f"when: choose one of {NOW}, {BEST} or {AT}.")
    if when == BEST:
        found = best_time(owner_id)
        if found.at is None:
            raise InvalidInput(f"when: there is no best time to send yet ({found.reason}). Send now, or pick a"
                               " time of day.")
        return f"{found.at:%H:%M}"
    if when == AT:
        try:
            return f"{parse_clock((form.at.data or '').strip()):%H:%M}"
        except ValueError as err:
            raise InvalidInput(f"at: {err}. Write the time as HH:MM, e.g. 18:30.") from None
    return None


def _waiting(campaign_id: int) -> int:
    """Recipients with a number and no message sent yet (read only)."""
    totals: Counter = Counter()
    for t in recipient_totals(campaign_id).values():
        totals.update(t)
    return totals["pending"] + totals["ready"]


def _sender(campaign) -> tuple[str | None, str | None]:
    try:
        return sender_of(campaign), None
    except SendError as err:
        return None, str(err)


@bp.route("/campaigns/<int:campaign_id>/send", methods=["GET", "POST"])
@login_required
def send(campaign_id: int) -> Any:
    campaign = campaign_or_404(campaign_id)
    jobs = Jobs(current_app)
    form = SendForm()
    if form.is_submitted():
        if not form.validate():
            raise InvalidInput("The form expired; please go back and press “Send” again.")
        sender, problem = _sender(campaign)
        if problem:
            raise InvalidInput(problem)
        start_send(campaign.id, at=_send_at(form, campaign.owner_id))
        return redirect(url_for("smstrack_dashboard.send", campaign_id=campaign.id), 303)
    view = send_view(campaign.id)
    sender, problem = _sender(campaign)
    waiting, unknown = _waiting(campaign.id), unknown_count(campaign.id)
    best = None
    if (waiting or unknown) and not problem and not (view and view.active):
        best = best_time(campaign.owner_id)  # the choice the form offers
    return render_template(
        "smstrack/send.html", campaign=campaign, form=form, queued=jobs.queued, job=view,
        waiting=waiting, unknown=unknown, sender=sender, problem=problem,
        rate=current_app.config[Keys.SEND_RATE], best=best,
    )


def _job_json(view) -> Response:
    response = jsonify(view.as_dict() if view is not None else {"status": "none", "active": False})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/campaigns/<int:campaign_id>/jobs/send.json")
@login_required
def send_status(campaign_id: int) -> Response:
    """``{"status": ..., "active": ..., "done": n, "total": m, ...}`` of the
    campaign's send job; ``{"status": "none"}`` when there is none."""
    return _job_json(send_view(campaign_or_404(campaign_id).id))


@bp.get("/campaigns/<int:campaign_id>/jobs/check-links.json")
@login_required
def check_links_status(campaign_id: int) -> Response:
    """The same for the campaign's link check job."""
    return _job_json(check_links_view(campaign_or_404(campaign_id).id))
