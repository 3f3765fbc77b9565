"""The jobs the CLI and the dashboard start: a campaign's send and its link
check. Each is idempotent, reports its progress in the job's meta
(:func:`.queue.report_progress`) and returns plain values (JSON).

A send that runs again (its worker was killed) goes on where it stopped:
:func:`.sending <flask_smstrack.sms.sending.send_campaign>` claims each
message before it goes, so none goes twice. The messages the dead run left
in an unknown state (claimed, Twilio's answer never read) are settled once
they can no longer be on their way (:data:`~flask_smstrack.sms.sending.IN_FLIGHT`
after their claim): Twilio is asked whether it has them, and only those it
does not have are sent.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from ..manage import get_campaign
from ..models import Recipient
from ..state import get_state
from .queue import Jobs, current_job, job_key, report_progress

#: Names of the jobs, as :func:`flask_smstrack.state.enqueue` takes them.
SEND = "flask_smstrack.jobs.tasks:send"
CHECK_LINKS = "flask_smstrack.jobs.tasks:check_links"
#: A send job runs again this many times when its worker dies.
SEND_RETRIES = 5
#: Rounds of waiting for messages in an unknown state, in one run.
SETTLE_ROUNDS = 3


def send_key(campaign_id: int) -> str:
    return job_key(current_app, "send", campaign_id)


def check_links_key(campaign_id: int) -> str:
    return job_key(current_app, "check-links", campaign_id)


def enqueue_send(campaign_id: int, **options: Any):
    """Start the campaign's send job (the one already waiting or running, if
    any); inline without Redis, where the result is returned."""
    return Jobs(current_app).submit(
        SEND, [campaign_id], options, key=send_key(campaign_id), timeout=-1, retries=SEND_RETRIES,
        description=f"send campaign {campaign_id}",
    )


def _start(key: str, name: str, args: list, enqueue, kwargs: dict[str, Any] | None = None, *,
           resumable: bool = False):
    """A job the dashboard starts: ``enqueue()`` with Redis, else
    ``name(*args, **kwargs)`` on a thread of this process (:mod:`.local`);
    its view."""
    from . import local
    from .queue import job_view

    if Jobs(current_app).queued:
        return job_view(enqueue())
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return local.start(app, key, name, args, kwargs, resumable=resumable)


def _view(key: str):
    from . import local
    from .queue import job_view

    jobs = Jobs(current_app)
    if jobs.queued:
        return job_view(jobs.fetch(key))
    return local.fetch(current_app._get_current_object(), key)  # type: ignore[attr-defined]


def start_send(campaign_id: int, at: str | None = None):
    """The dashboard's Send: the campaign's send job (see :func:`_start`),
    at ``at`` (``"HH:MM"`` on each recipient's clock) when given."""
    options = {"at": at} if at else {}
    return _start(send_key(campaign_id), SEND, [campaign_id], lambda: enqueue_send(campaign_id, **options),
                  options, resumable=True)


def send_view(campaign_id: int):
    """The campaign's last or running send job (queued or on a thread), or ``None``."""
    return _view(send_key(campaign_id))


def start_check_links(campaign_id: int):
    """The dashboard's "Test links": the campaign's link check job (see :func:`_start`)."""
    return _start(check_links_key(campaign_id), CHECK_LINKS, [campaign_id], lambda: enqueue_check_links(campaign_id))


def check_links_view(campaign_id: int):
    """The campaign's last or running link check job, or ``None``."""
    return _view(check_links_key(campaign_id))


def enqueue_check_links(campaign_id: int):
    return Jobs(current_app).submit(
        CHECK_LINKS, [campaign_id], key=check_links_key(campaign_id), timeout=600,
        description=f"check the links of campaign {campaign_id}",
    )


class _Progress:
    """Counts done recipients into the job's meta, at most every 0.3 s."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self._at = total, 0, 0.0
        report_progress(total=total, done=0, message="sending")

    def __call__(self, n: int) -> None:
        self.done += n
        if time.monotonic() - self._at >= 0.3:
            self.flush()

    def flush(self, **extra: Any) -> None:
        self._at = time.monotonic()
        report_progress(total=max(self.total, self.done), done=self.done, **extra)


def _newest_unknown_claim(campaign_id: int) -> dt.datetime | None:
    r = Recipient.__table__.c
    value = get_state().db.session.execute(
        select(func.max(r.sent_at)).where(r.campaign_id == campaign_id, r.status == "sending", r.message_sid.is_(None))
    ).scalar()
    get_state().db.session.commit()
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def send(
    campaign_id: int, rate: float | None = None, retry_unknown: bool = False, skip_quiet: bool = False,
    at: str | None = None, resumed: bool = False,
) -> dict[str, Any]:
    """Send the campaign (see :func:`flask_smstrack.sms.sending.send_campaign`);
    ``at`` is ``"HH:MM"``. A run after a dead one (``resumed``, or the RQ
    job's second run) settles the messages left in an unknown state
    (``retry_unknown``), waiting until they cannot be on their way any more."""
    from ..sms.outbox import send_plan
    from ..sms.quiet import parse_clock
    from ..sms.sending import IN_FLIGHT, send_campaign

    campaign = get_campaign(int(campaign_id))
    if campaign is None:
        return {"error": f"no campaign {campaign_id}"}
    job = current_job()
    resumed = bool(resumed) or (job is not None and int(job.meta.get("runs") or 1) > 1)
    retry_unknown = bool(retry_unknown or resumed)
    plan = send_plan(campaign)
    progress = _Progress(plan.messages + (plan.unknown if retry_unknown else 0))
    options = {"rate": rate, "skip_quiet": skip_quiet, "at": parse_clock(at) if at else None}
    totals: dict[str, Any] = {"sent": 0, "segments": 0, "reconciled": 0, "skipped": 0, "suppressed": 0,
                              "failed": [], "resumed": resumed}
    result = None
    for round_ in range(SETTLE_ROUNDS + 1):
        result = send_campaign(campaign, progress=progress, retry_unknown=retry_unknown, **options)
        totals["sent"] += result.sent
        totals["segments"] += result.segments
        totals["reconciled"] += result.reconciled
        totals["skipped"] += result.skipped
        totals["suppressed"] += result.suppressed
        totals["failed"] += [list(f) for f in result.failed]
        if result.stopped or not result.unknown or not retry_unknown or round_ == SETTLE_ROUNDS:
            break
        newest = _newest_unknown_claim(campaign.id)
        if newest is None:
            break
        wait = (newest + IN_FLIGHT - dt.datetime.now(dt.timezone.utc)).total_seconds() + 1
        progress.flush(
            message=f"waiting {wait:.0f} s to ask the provider about {result.unknown} message(s) in an unknown state"
        )
        time.sleep(max(wait, 0))
        progress.total += result.unknown
    assert result is not None
    totals.update(
        unknown=result.unknown, stopped=result.stopped, no_consent=result.no_consent,
        held=sum(g.count for g in result.held), left=send_plan(campaign).messages,
    )
    progress.flush(message="done")
    return totals


def check_links(campaign_id: int) -> list[dict[str, Any]]:
    """Check the campaign's links (:func:`flask_smstrack.sms.linkcheck.check_campaign_links`);
    the checks as dicts."""
    from ..sms.linkcheck import check_campaign_links, count_destinations

    campaign = get_campaign(int(campaign_id))
    if campaign is None:
        return []
    total = count_destinations(campaign)
    done = 0
    report_progress(total=total, done=0, message="checking")

    def progress(n: int) -> None:
        nonlocal done
        done += n
        report_progress(done=done)

    return [c.as_dict() for c in check_campaign_links(campaign, progress=progress)]


def link_checks(rows: list[dict[str, Any]] | None):
    """The :class:`~flask_smstrack.sms.linkcheck.LinkCheck` objects of a
    link check job's result."""
    from dataclasses import fields

    from ..sms.linkcheck import LinkCheck

    names = {f.name for f in fields(LinkCheck)}
    return [LinkCheck(**{k: v for k, v in row.items() if k in names}) for row in rows or []]
