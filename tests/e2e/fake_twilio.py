"""A small fake of Twilio's Messages API on 127.0.0.1, for the sending tests.

The real ``twilio`` client talks to it through ``SMSTRACK_TWILIO_API_URL``.
It checks HTTP basic auth, answers in Twilio's JSON shapes, refuses the
numbers in ``invalid`` with error 21211, can drop the connection after a
number of messages (a crash mid-send, seen from the sender), lists
messages with the ``To`` and ``DateSent>`` filters, and records every
request.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Callable
from email.utils import format_datetime, parsedate_to_datetime

from werkzeug.wrappers import Request, Response

from e2e.fake_api import FakeApi
from flask_smstrack.sms.segments import segment_info

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "fake-auth-token"
_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages\.json$")


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    form: dict[str, str]
    args: dict[str, str]


@dataclass
class FakeTwilio(FakeApi):
    name = "Twilio"
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    #: Numbers answered with error 21211.
    invalid: set[str] = field(default_factory=set)
    #: Numbers that replied STOP to the sender at Twilio: answered with
    #: error 21610.
    unsubscribed: set[str] = field(default_factory=set)
    #: After this many messages, every create request loses its connection.
    drop_after: int | None = None
    #: Whether a create whose connection is dropped still creates the
    #: message (Twilio took it, the answer was lost).
    accept_dropped: bool = False
    messages: list[dict] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    #: Called with the form of each create request before it is answered
    #: (something that happens while a send is under way).
    on_create: Callable[[dict[str, str]], None] | None = None

    @property
    def creates(self) -> list[Seen]:
        """The create-message requests received, in order."""
        return [r for r in self.requests if r.method == "POST"]

    def add_message(self, to: str, body: str, **fields) -> dict:
        """A message Twilio has, as if created by an earlier request."""
        with self._lock:
            return self._create({"To": to, "Body": body, **fields})

    # -- the API ----------------------------------------------------------

    def _create(self, form: dict[str, str]) -> dict:
        now = dt.datetime.now(dt.timezone.utc)
        service = form.get("MessagingServiceSid")
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": service,
            "body": form.get("Body", ""),
            "status": "accepted" if service else "queued",
            # Twilio answers 0 segments for messages sent through a service.
            "num_segments": "0" if service else str(segment_info(form.get("Body", "")).segments),
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": format_datetime(now, usegmt=True),
            "date_updated": format_datetime(now, usegmt=True),
            "date_sent": format_datetime(now, usegmt=True),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/x.json",
            "subresource_uris": {},
        }
        message["uri"] = message["uri"].replace("x.json", f"{message['sid']}.json")
        self.messages.append(message)
        return message

    @staticmethod
    def _json(payload: dict, status: int) -> Response:
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    def _error(self, status: int, code: int, message: str) -> Response:
        return self._json(
            {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
            status,
        )

    def _handle(self, request: Request) -> Response | None:
        seen = Seen(request.method, request.path, dict(request.form), dict(request.args))
        if self.on_create is not None and request.method == "POST":
            self.on_create(seen.form)
        with self._lock:
            self.requests.append(seen)
            return self._answer(request)

    def _answer(self, request: Request) -> Response | None:
        match = _MESSAGES.match(request.path)
        if match is None:
            return self._error(404, 20404, "The requested resource was not found")
        auth = request.authorization
        if (
            auth is None
            or auth.username != self.account_sid
            or auth.password != self.auth_token
            or match["account"] != self.account_sid
        ):
            return self._error(401, 20003, "Authenticate")
        if request.method == "GET":
            return self._list(request)
        if request.method != "POST":
            return self._error(405, 20004, "Method not allowed")
        form = request.form
        if not form.get("To"):
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return self._error(400, 21603, "A 'From' phone number is required.")
        if self.drop_after is not None and len(self.messages) >= self.drop_after:
            if self.accept_dropped:
                self._create(dict(form))
            return None
        if form["To"] in self.invalid:
            return self._error(400, 21211, f"The 'To' number {form['To']} is not a valid phone number.")
        if form["To"] in self.unsubscribed:
            return self._error(400, 21610, "Attempt to send to unsubscribed recipient")
        return self._json(self._create(dict(form)), 201)

    def _list(self, request: Request) -> Response:
        found = list(reversed(self.messages))  # newest first, as Twilio lists them
        if "To" in request.args:
            found = [m for m in found if m["to"] == request.args["To"]]
        if "DateSent>" in request.args:
            after = dt.datetime.fromisoformat(request.args["DateSent>"].replace("Z", "+00:00"))
            found = [
                m for m in found
                if m["date_sent"] and _parse(m["date_sent"]) >= after.replace(microsecond=0)
            ]
        size = int(request.args.get("PageSize", 50))
        page = found[:size]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return self._json(
            {
                "messages": page,
                "end": max(len(page) - 1, 0),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            },
            200,
        )


def _parse(value: str) -> dt.datetime:
    return parsedate_to_datetime(value)
