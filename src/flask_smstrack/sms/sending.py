"""Sending a campaign's messages through Twilio.

Every message goes out at most once, even when a send is interrupted, run
again, or run from two machines at the same time:

1. The campaign is prepared (see :mod:`.messages`): each unsent recipient
   gets a rendered message and the status ``ready``.
2. Each ``ready`` recipient is *claimed* before Twilio is called: one
   ``UPDATE ... SET status = 'sending' WHERE status = 'ready'``, committed.
   Only one sender wins it.
3. Twilio's answer is stored: the message SID, its segments and Twilio's
   status (``queued``, or ``accepted`` for a Messaging Service). A message
   Twilio refuses (an invalid number...) is stored as ``failed`` with
   Twilio's error code, and the send goes on.

A recipient left ``sending`` without a message SID is in an unknown state:
its request left, but the answer never came back (a crash, a lost
connection). It is never sent again blindly: with ``retry_unknown`` Twilio
is first asked for the messages sent to that number since the claim, a
matching one is adopted, and only when there is none is the message sent.

Messages are paced at ``SMSTRACK_SEND_RATE`` per second. Delivery receipts
(:func:`.receipts.record_status`) only ever move a message's status forward.

No message goes out inside the recipient's quiet hours, and ``at`` sends at a
local time (see :mod:`.schedule`): a held recipient is not claimed (and is
given back if its time ran out while it waited for the pace), then the send
sleeps until the next one may go, or with ``skip_quiet`` leaves it ``ready``.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import requests
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from ..config import Keys
from ..models import EVERY_OWNER, Campaign, Recipient, utcnow
from ..state import get_state
from .consent import consent_conditions, without_consent
from .messages import prepare_messages
from .opt_out_text import check_opt_out_text
from .optouts import opt_out
from .outbox import unknown_count
from .receipts import segment_count
from .schedule import Clock, HeldGroup, HeldTally, Schedule, app_clock
from .schedule import Pacer as _Pacer
from .suppression import held_at_send
from .twilio import TIMEOUT, SendError, TwilioSettings, twilio_client, twilio_settings
from .twilio import error_info as _error_info
from .twilio import surely_not_sent as _surely_not_sent

logger = logging.getLogger("flask_smstrack")


#: A message claimed this recently may still be on its way to Twilio:
#: ``retry_unknown`` leaves it alone.
IN_FLIGHT = dt.timedelta(seconds=2 * TIMEOUT)


#: How far Twilio's clock and ours may be apart.
CLOCK_SKEW = dt.timedelta(minutes=5)


#: Attempts of one message while Twilio answers 429 Too Many Requests.
RATE_LIMITED_TRIES = 5


BATCH = 500
#: Twilio's error for a number that replied STOP to the sender.
UNSUBSCRIBED = 21610


#: Twilio errors about the account or the sender rather than one recipient:
#: the send stops, and the message stays ready for the next run.
ACCOUNT_ERRORS = frozenset({20003, 20005, 20404, 21212, 21603, 21606, 21659, 21701, 21702, 21703, 21704, 21705})


_recipients = Recipient.__table__


_r = _recipients.c


_campaigns = Campaign.__table__


def send_rate(rate: float | None = None) -> float:
    """Messages per second: ``rate``, else ``SMSTRACK_SEND_RATE``."""
    value = current_app.config[Keys.SEND_RATE] if rate is None else rate
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = 0.0
    if not value > 0:
        raise SendError(f"the send rate must be a number of messages per second above 0, not {value!r}")
    return value


class Failure(NamedTuple):
    phone: str
    code: str
    message: str


@dataclass
class SendResult:
    #: Messages Twilio accepted in this run.
    sent: int = 0
    #: Messages Twilio refused: ``(phone, error code, message)``.
    failed: list[Failure] = field(default_factory=list)
    #: Messages in an unknown state after the run (see the module doc).
    unknown: int = 0
    #: Recipients another sender claimed first.
    skipped: int = 0
    #: Segments of the messages sent in this run.
    segments: int = 0
    #: Messages in an unknown state found at Twilio, and not sent again.
    reconciled: int = 0
    #: Why the run stopped before the end, if it did.
    stopped: str | None = None
    #: Recipients left ``ready`` by quiet hours or ``at`` (with ``skip_quiet``).
    held: list[HeldGroup] = field(default_factory=list)
    #: Recipients left out for want of a consent record.
    no_consent: int = 0
    #: Messages not sent because the number opted out since it was prepared.
    suppressed: int = 0


def send_campaign(
    campaign: Campaign,
    *,
    client: Client | None = None,
    progress: Callable[[int], None] | None = None,
    rate: float | None = None,
    retry_unknown: bool = False,
    skip_quiet: bool = False,
    at: dt.time | None = None,
    clock: Clock | None = None,
    on_hold: Callable[[list[HeldGroup], dt.datetime], None] | None = None,
) -> SendResult:
    """Send the campaign's messages through Twilio; safe to run again.

    Prepares the campaign first (see :func:`.messages.prepare_messages`),
    then sends each ``ready`` recipient's message once, in recipient order,
    at ``rate`` messages per second (default ``SMSTRACK_SEND_RATE``).
    ``retry_unknown`` first settles the messages left in an unknown state by
    an earlier run. ``progress`` is called with the number of recipients
    done. Recipients in quiet hours, or before the local time ``at``, are
    waited for (``on_hold`` is told who waits and until when, then
    ``clock`` sleeps), or with ``skip_quiet`` left ready. Raises
    :class:`SendError` (or :class:`.messages.PrepareError`) when nothing can be sent as configured; problems met on the way end
    the run early with ``SendResult.stopped`` saying why.
    """
    check_opt_out_text(campaign)
    settings = twilio_settings()
    pace = send_rate(rate)
    clock = clock or app_clock()
    schedule = Schedule.for_app(at, clock.now())
    prepare_messages(campaign)
    own_client = client is None
    sender = _Sender(
        campaign.id, settings, client or twilio_client(settings), _Pacer(pace, clock), progress, schedule, clock
    )
    try:
        if retry_unknown:
            sender.settle_unknown()
        while sender.result.stopped is None:
            sender.send_ready()
            until = sender.held.first()
            if skip_quiet or until is None:
                break
            if on_hold is not None:
                on_hold(sender.held.groups(), until)
            clock.sleep((until - clock.now()).total_seconds())
    finally:
        if own_client:
            session = getattr(sender.client.http_client, "session", None)
            if session is not None:
                session.close()
    sender.result.unknown = unknown_count(campaign.id)
    sender.result.held = sender.held.groups()
    sender.result.no_consent = without_consent(campaign.id)
    return sender.result


class _Sender:
    def __init__(
        self, campaign_id: int, settings: TwilioSettings, client: Client, pacer: _Pacer, progress,
        schedule: Schedule | None = None, clock: Clock | None = None,
    ) -> None:
        self.campaign_id = campaign_id
        self.settings = settings
        self.client = client
        self.pacer = pacer
        self.progress = progress or (lambda n: None)
        self.session = get_state().db.session
        self.owner_id = self.session.get(Campaign, campaign_id).owner_id
        self.result = SendResult()
        self._campaign_marked = False
        #: Each claimed recipient's claim time, as this sender wrote it.
        self._claims: dict[int, dt.datetime] = {}
        self.clock = clock or Clock()
        #: Quiet hours and ``at``; by default none.
        self.schedule = schedule or Schedule(None, None, self.clock.now())
        #: Recipients the last pass held (quiet hours, ``at``).
        self.held = HeldTally()

    # -- the two passes --------------------------------------------------

    def send_ready(self) -> None:
        """Claim and send every ready recipient that may go now, in id order."""
        last = 0
        self.held = HeldTally()
        while True:
            rows = self.session.execute(
                select(_r.id, _r.phone, _r.message, _r.segments, _r.timezone)
                .where(
                    _r.campaign_id == self.campaign_id, _r.status == "ready", _r.id > last, _r.phone.is_not(None),
                    *consent_conditions(),
                )
                .order_by(_r.id)
                .limit(BATCH)
            ).all()
            self.session.commit()
            if not rows:
                return
            for row in rows:
                last = row.id
                if self._held(row):
                    continue
                if not self._claim(row.id):
                    self.result.skipped += 1
                    self.progress(1)
                    continue
                going = self._send(row)
                self.progress(1)
                if not going:
                    return

    def settle_unknown(self) -> None:
        """Adopt the messages of unknown state that Twilio has, send the others."""
        rows = self.session.execute(
            select(_r.id, _r.phone, _r.message, _r.segments, _r.sent_at, _r.timezone)
            .where(
                _r.campaign_id == self.campaign_id, _r.status == "sending", _r.message_sid.is_(None),
                _r.phone.is_not(None),
            )
            .order_by(_r.id)
        ).all()
        self.session.commit()
        recent = self.clock.now() - IN_FLIGHT
        for row in rows:
            if row.sent_at is not None and row.sent_at > recent:
                self.progress(1)  # another sender may still be waiting for Twilio's answer
                continue
            # Claimed again (a new claim time), so two runs never settle it both.
            same_claim = _r.sent_at == row.sent_at if row.sent_at is not None else _r.sent_at.is_(None)
            if not self._stamp(row.id, _r.status == "sending", _r.message_sid.is_(None), same_claim):
                self.result.skipped += 1
                self.progress(1)
                continue
            try:
                found = self._find_at_twilio(row)
            except (TwilioException, requests.RequestException) as err:
                self.result.stopped = f"could not ask Twilio about the message to {row.phone}: {err}"
                return
            if found is not None:
                self._store(row, found, reconciled=True)
                going = True
            else:
                going = self._send(row)
            self.progress(1)
            if not going:
                return

    # -- one recipient ---------------------------------------------------

    def _held(self, row) -> bool:
        """Whether quiet hours or ``at`` hold the recipient now (counted)."""
        hold = self.schedule.hold(row.phone, getattr(row, "timezone", None), self.clock.now())
        if hold is not None:
            self.held.add(hold)
        return hold is not None

    def _stamp(self, recipient_id: int, *conditions: Any, **values: Any) -> bool:
        """Claim the recipient now (``sent_at``, and ``values``) where
        ``conditions`` hold, committed, and remember the claim time;
        whether it was claimed."""
        stamp = self.clock.now()
        claimed = self.session.execute(
            update(_recipients).where(_r.id == recipient_id, *conditions).values(sent_at=stamp, **values)
        ).rowcount
        self.session.commit()
        if claimed:
            self._claims[recipient_id] = stamp
        return bool(claimed)

    def _claim(self, recipient_id: int) -> bool:
        return self._stamp(recipient_id, _r.status == "ready", status="sending")

    def _renew(self, recipient_id: int) -> bool:
        """Renew this sender's claim just before Twilio is called, so a claim
        that waited (for the pace, or after a 429) never looks abandoned to
        ``retry_unknown``; ``False`` when another sender took it over."""
        return self._stamp(
            recipient_id, _r.status == "sending", _r.message_sid.is_(None),
            _r.sent_at == self._claims.get(recipient_id),
        )

    def _release(self, recipient_id: int) -> None:
        """Give a claimed recipient back: its message surely did not go out."""
        self.session.execute(
            update(_recipients)
            .where(_r.id == recipient_id, _r.status == "sending", _r.message_sid.is_(None))
            .values(status="ready", sent_at=None)
        )
        self.session.commit()

    def _create_args(self, row) -> dict[str, Any]:
        args: dict[str, Any] = {"to": row.phone, "body": row.message, "status_callback": self.settings.status_callback}
        if self.settings.messaging_service_sid:
            args["messaging_service_sid"] = self.settings.messaging_service_sid
        else:
            args["from_"] = self.settings.from_
        return args

    def _send(self, row) -> bool:
        """Send one claimed recipient's message; ``False`` stops the run."""
        phone = row.phone
        for attempt in range(RATE_LIMITED_TRIES):
            self.pacer.wait()
            if self._held(row):  # its time ran out while it waited
                self._release(row.id)
                return True
            if not self._renew(row.id):
                self.result.skipped += 1
                return True
            if held_at_send(self.owner_id, row.id, row.phone):
                self.result.suppressed += 1
                return True
            try:
                message = self.client.messages.create(**self._create_args(row))
            except requests.RequestException as err:
                if _surely_not_sent(err):
                    self._release(row.id)
                    self.result.stopped = f"could not reach Twilio: {err}"
                else:
                    self.result.stopped = (
                        f"lost the connection to Twilio while sending to {phone} ({err}): that message may or"
                        " may not have gone out. Run again to send the rest; --retry-unknown asks Twilio about it first."
                    )
                return False
            except TwilioException as err:
                status, code, text = _error_info(err)
                if status == 429 or code == 20429:
                    self.clock.sleep(min(2**attempt, 30))
                    continue
                if status in (401, 403, 404) or code in ACCOUNT_ERRORS:
                    self._release(row.id)
                    self.result.stopped = (
                        f"Twilio refused the request: {text} (error {code}). Check {Keys.TWILIO_ACCOUNT_SID},"
                        f" {Keys.TWILIO_AUTH_TOKEN} and the sender ({Keys.TWILIO_MESSAGING_SERVICE_SID} or"
                        f" {Keys.TWILIO_FROM})."
                    )
                    return False
                if status >= 500 or not status:
                    self.result.stopped = (
                        f"Twilio answered {status or 'an error'} while sending to {phone} ({text}): that message"
                        " may or may not have gone out. Run again later; --retry-unknown asks Twilio about it first."
                    )
                    return False
                self._store_failure(row, code, text)
                return True
            except Exception as err:  # an answer that cannot be read: its fate is unknown
                logger.exception("Unreadable answer from Twilio for the message to %s", phone)
                self.result.stopped = f"could not read Twilio's answer for the message to {phone}: {err}"
                return False
            self._store(row, message)
            return True
        self._release(row.id)
        self.result.stopped = (
            f"Twilio kept answering 429 Too Many Requests: lower {Keys.SEND_RATE} or pass --rate, then run again."
        )
        return False

    def _store(self, row, message, *, reconciled: bool = False) -> None:
        segments = segment_count(getattr(message, "numsegment_count", None)) or row.segments
        status = str(getattr(message, "status", None) or "queued")
        error_code = getattr(message, "error_code", None)
        try:
            stored = self.session.execute(
                update(_recipients)
                .where(_r.id == row.id, _r.status == "sending", _r.message_sid.is_(None))
                .values(
                    message_sid=message.sid,
                    segments=segments,
                    status=status,
                    status_at=utcnow(),
                    error_code=str(error_code) if error_code else None,
                )
            ).rowcount
            if stored:
                self._mark_campaign_sent()
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            logger.error("Message %s to %s is already stored for another recipient", message.sid, row.phone)
            return
        if not stored:
            logger.warning("Recipient %s changed while its message %s was sent", row.id, message.sid)
            return
        if reconciled:
            self.result.reconciled += 1
        else:
            self.result.sent += 1
            self.result.segments += segments or 0

    def _store_failure(self, row, code: int | None, text: str) -> None:
        self.session.execute(
            update(_recipients)
            .where(_r.id == row.id, _r.status == "sending", _r.message_sid.is_(None))
            .values(status="failed", error_code=str(code) if code is not None else None, status_at=utcnow())
        )
        self.session.commit()
        self.result.failed.append(Failure(row.phone, str(code) if code is not None else "", text))
        if code == UNSUBSCRIBED:  # the number said STOP to the sender at Twilio: never try again
            opt_out([row.phone], self.owner_id or EVERY_OWNER, source="twilio", keyword=str(code))

    def _mark_campaign_sent(self) -> None:
        """The first message out marks the campaign sent, at that time."""
        if self._campaign_marked:
            return
        c = _campaigns.c
        self.session.execute(
            update(_campaigns).where(c.id == self.campaign_id, c.sent_at.is_(None)).values(sent_at=utcnow())
        )
        self.session.execute(update(_campaigns).where(c.id == self.campaign_id, c.status != "sent").values(status="sent"))
        self._campaign_marked = True

    # -- settling unknown messages ----------------------------------------

    def _find_at_twilio(self, row):
        """The message Twilio has for ``row`` since its claim, if any."""
        since = row.sent_at - CLOCK_SKEW if row.sent_at is not None else None
        seen: set[str] = set()
        # Messages still queued have no send date yet: the second look-up,
        # without a date, finds them among the number's latest messages.
        lookups = ([{"date_sent_after": since}] if since is not None else []) + [{}]
        for extra in lookups:
            for message in self.client.messages.list(to=row.phone, limit=50, **extra):
                if message.sid in seen:
                    continue
                seen.add(message.sid)
                if self._matches(message, row, since):
                    return message
        return None

    def _matches(self, message, row, since: dt.datetime | None) -> bool:
        direction = str(getattr(message, "direction", "") or "")
        if direction and not direction.startswith("outbound"):
            return False
        created = getattr(message, "date_created", None)
        if since is not None and isinstance(created, dt.datetime) and created < since:
            return False
        service = getattr(message, "messaging_service_sid", None)
        if self.settings.messaging_service_sid and service and service != self.settings.messaging_service_sid:
            return False
        sender = getattr(message, "from_", None)
        if not self.settings.messaging_service_sid and sender and sender != self.settings.from_:
            return False
        body = getattr(message, "body", None)
        # Trial accounts prefix the body; a redacted body cannot be compared.
        if body and row.message and row.message.strip() not in body:
            return False
        taken = self.session.execute(select(_r.id).where(_r.message_sid == message.sid)).first()
        self.session.commit()
        return taken is None
