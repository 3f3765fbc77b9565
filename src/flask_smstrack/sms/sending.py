"""Sending a campaign's messages through its provider (see :mod:`.providers`).

Every message goes out at most once, even when a send is interrupted, run
again, or run from two machines at the same time:

1. The campaign is prepared (see :mod:`.messages`): each unsent recipient
   gets a rendered message and the status ``ready``.
2. Each ``ready`` recipient is *claimed* before the provider is called: one
   ``UPDATE ... SET status = 'sending' WHERE status = 'ready'``, committed.
   Only one sender wins it.
3. The provider's answer is stored: the message id, its segments, its price
   when the provider says, and the provider's status (``queued``, or
   ``accepted`` for a Twilio Messaging Service). A message the provider
   refuses (an invalid number...) is stored as ``failed`` with its error
   code, and the send goes on.

A recipient left ``sending`` without a message id is in an unknown state:
its request left, but the answer never came back (a crash, a lost
connection). It is never sent again blindly: with ``retry_unknown`` the
provider is first asked for the messages sent to that number since the
claim, a matching one is adopted, and only when there is none is the
message sent.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..config import Keys
from ..models import EVERY_OWNER, Campaign, Recipient, utcnow
from ..state import get_state
from .consent import consent_conditions, without_consent
from .messages import prepare_messages
from .opt_out_text import check_opt_out_text
from .optouts import opt_out
from .outbox import unknown_count
from .provider_costs import apply_reported_costs
from .providers import (
    AccountRefused,
    Provider,
    RateLimited,
    Refused,
    SendError,
    Sent,
    Unknown,
    Unreachable,
    campaign_provider,
    make_provider,
)
from .schedule import Clock, HeldGroup, HeldTally, Schedule, app_clock
from .schedule import Pacer as _Pacer
from .suppression import held_at_send
from .twilio import TIMEOUT

logger = logging.getLogger("flask_smstrack")


#: A message claimed this recently may still be on its way to the provider:
#: ``retry_unknown`` leaves it alone.
IN_FLIGHT = dt.timedelta(seconds=2 * TIMEOUT)


#: How far the provider's clock and ours may be apart.
CLOCK_SKEW = dt.timedelta(minutes=5)


#: Attempts of one message while the provider answers 429 Too Many Requests.
RATE_LIMITED_TRIES = 5


BATCH = 500


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
    #: Messages the provider accepted in this run.
    sent: int = 0
    #: Messages the provider refused: ``(phone, error code, message)``.
    failed: list[Failure] = field(default_factory=list)
    #: Messages in an unknown state after the run (see the module doc).
    unknown: int = 0
    #: Recipients another sender claimed first.
    skipped: int = 0
    #: Segments of the messages sent in this run.
    segments: int = 0
    #: Messages in an unknown state found at the provider, and not sent again.
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
    client: Any = None,
    provider: Provider | None = None,
    progress: Callable[[int], None] | None = None,
    rate: float | None = None,
    retry_unknown: bool = False,
    skip_quiet: bool = False,
    at: dt.time | None = None,
    clock: Clock | None = None,
    on_hold: Callable[[list[HeldGroup], dt.datetime], None] | None = None,
) -> SendResult:
    """Send the campaign's messages through its provider; safe to run again.

    Prepares the campaign first (see :func:`.messages.prepare_messages`),
    then sends each ``ready`` recipient's message once, in recipient order,
    at ``rate`` messages per second (default ``SMSTRACK_SEND_RATE``).
    ``retry_unknown`` first settles the messages left in an unknown state by
    an earlier run. ``progress`` is called with the number of recipients
    done. Recipients in quiet hours, or before the local time ``at``, are
    waited for (``on_hold`` is told who waits and until when, then
    ``clock`` sleeps), or with ``skip_quiet`` left ready. Raises
    :class:`SendError` (or :class:`.messages.PrepareError`) when nothing can be sent as configured; problems met on the way end
    the run early with ``SendResult.stopped`` saying why. ``provider`` (or
    the service's own ``client``) replaces the one the config makes.
    """
    check_opt_out_text(campaign)
    provider = provider or make_provider(campaign_provider(campaign), client=client)
    pace = send_rate(rate)
    clock = clock or app_clock()
    schedule = Schedule.for_app(at, clock.now())
    prepare_messages(campaign)
    sender = _Sender(campaign.id, provider, _Pacer(pace, clock), progress, schedule, clock)
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
        provider.close()
        apply_reported_costs(campaign.id)
    sender.result.unknown = unknown_count(campaign.id)
    sender.result.held = sender.held.groups()
    sender.result.no_consent = without_consent(campaign.id)
    return sender.result


class _Sender:
    def __init__(
        self, campaign_id: int, provider: Provider, pacer: _Pacer, progress,
        schedule: Schedule | None = None, clock: Clock | None = None,
    ) -> None:
        self.campaign_id = campaign_id
        self.provider = provider
        self.pacer = pacer
        self.progress = progress or (lambda n: None)
        self.session = get_state().db.session
        campaign = self.session.get(Campaign, campaign_id)
        self.owner_id, self.currency = campaign.owner_id, campaign.currency
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
        """Adopt the messages of unknown state that the provider has, send the others."""
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
                self.progress(1)  # another sender may still be waiting for the provider's answer
                continue
            # Claimed again (a new claim time), so two runs never settle it both.
            same_claim = _r.sent_at == row.sent_at if row.sent_at is not None else _r.sent_at.is_(None)
            if not self._stamp(row.id, _r.status == "sending", _r.message_sid.is_(None), same_claim):
                self.result.skipped += 1
                self.progress(1)
                continue
            try:
                found = self._find_at_provider(row)
            except Unknown as err:
                self.result.stopped = err.text
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
        """Renew this sender's claim just before the provider is called, so a claim
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

    def _send(self, row) -> bool:
        """Send one claimed recipient's message; ``False`` stops the run."""
        title = self.provider.title
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
                message = self.provider.send(row.phone, row.message, reference=str(row.id))
            except RateLimited:
                self.clock.sleep(min(2**attempt, 30))
                continue
            except (Unreachable, AccountRefused) as err:
                self._release(row.id)
                self.result.stopped = err.text
                return False
            except Unknown as err:
                self.result.stopped = err.text
                return False
            except Refused as err:
                self._store_failure(row, err)
                return True
            self._store(row, message)
            return True
        self._release(row.id)
        self.result.stopped = (
            f"{title} kept answering 429 Too Many Requests: lower {Keys.SEND_RATE} or pass --rate, then run again."
        )
        return False

    def _store(self, row, message: Sent, *, reconciled: bool = False) -> None:
        segments = message.segments or row.segments
        try:
            stored = self.session.execute(
                update(_recipients)
                .where(_r.id == row.id, _r.status == "sending", _r.message_sid.is_(None))
                .values(
                    message_sid=message.message_id,
                    segments=segments,
                    status=message.status,
                    status_at=utcnow(),
                    error_code=message.error_code,
                    # A price in another currency than the campaign's is not added up.
                    cost=message.cost if message.currency in (None, self.currency) else None,
                )
            ).rowcount
            if stored:
                self._mark_campaign_sent()
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            logger.error("Message %s to %s is already stored for another recipient", message.message_id, row.phone)
            return
        if not stored:
            logger.warning("Recipient %s changed while its message %s was sent", row.id, message.message_id)
            return
        if reconciled:
            self.result.reconciled += 1
        else:
            self.result.sent += 1
            self.result.segments += segments or 0

    def _store_failure(self, row, err: Refused) -> None:
        code = err.code or None
        self.session.execute(
            update(_recipients)
            .where(_r.id == row.id, _r.status == "sending", _r.message_sid.is_(None))
            .values(status="failed", error_code=code[:16] if code else None, status_at=utcnow())
        )
        self.session.commit()
        self.result.failed.append(Failure(row.phone, code or "", err.text))
        if err.unsubscribed:  # the number said STOP to the sender at the provider: never try again
            opt_out([row.phone], self.owner_id or EVERY_OWNER, source=self.provider.name, keyword=code)

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

    def _find_at_provider(self, row) -> Sent | None:
        """The message the provider has for ``row`` since its claim, if any
        (and not already stored for another recipient)."""
        since = row.sent_at - CLOCK_SKEW if row.sent_at is not None else None
        for message in self.provider.candidates(row.phone, row.message, since, str(row.id)):
            taken = self.session.execute(select(_r.id).where(_r.message_sid == message.message_id)).first()
            self.session.commit()
            if taken is None:
                return message
        return None
