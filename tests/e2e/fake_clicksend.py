"""A small fake of ClickSend's REST API (v3) on 127.0.0.1, for the sending tests.

The real ``clicksend`` SDK talks to it through ``SMSTRACK_CLICKSEND_API_URL``.
It checks HTTP basic auth (username and API key) as ClickSend does, answers
in ClickSend's JSON shapes (``http_code``, ``response_code``,
``response_msg``, ``data``), refuses the numbers in ``invalid`` with the
message status ``INVALID_RECIPIENT``, can drop the connection after a
number of messages (a crash mid-send, seen from the sender), lists the
history with ``q=to:...``, ``date_from`` and ``date_to``, and records every
request.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from e2e.fake_api import FakeApi
from flask_smstrack.sms.segments import segment_info

USERNAME = "shop@example.com"
API_KEY = "FAKE-CLICKSEND-KEY-0001"
#: Price of one message part, as ClickSend quotes it.
PART_PRICE = "0.0770"
CURRENCY = {
    "currency_name_short": "USD", "currency_prefix_d": "$", "currency_prefix_c": "¢",
    "currency_name_long": "US Dollars", "min_recharge_amount": "20.00", "max_recharge_amount": "10000.00",
}


@dataclass
class Seen:
    method: str
    path: str
    body: dict
    args: dict[str, str]


@dataclass
class FakeClickSend(FakeApi):
    name = "ClickSend"
    username: str = USERNAME
    api_key: str = API_KEY
    #: Numbers answered with the message status ``INVALID_RECIPIENT``.
    invalid: set[str] = field(default_factory=set)
    #: After this many messages, every send request loses its connection.
    drop_after: int | None = None
    #: Whether a send whose connection is dropped still sends the message.
    accept_dropped: bool = False
    messages: list[dict] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)

    @property
    def sends(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v3/sms/send"]

    # -- the API ----------------------------------------------------------

    def _message(self, item: dict, status: str) -> dict:
        parts = segment_info(item.get("body", "")).segments
        ok = status == "SUCCESS"
        message = {
            "direction": "out",
            "date": int(dt.datetime.now(dt.timezone.utc).timestamp()),
            "to": item.get("to"),
            "body": item.get("body", ""),
            "from": item.get("from") or "+61411111111",
            "schedule": 0,
            "message_id": str(uuid.uuid4()).upper() if ok else None,
            "message_parts": parts,
            "message_price": f"{float(PART_PRICE) * parts:.4f}" if ok else "0.0000",
            "from_email": None,
            "list_id": None,
            "custom_string": item.get("custom_string") or "",
            "contact_id": None,
            "user_id": 1,
            "subaccount_id": 1,
            "is_shared_system_number": False,
            "country": "US",
            "carrier": "",
            "status": status,
        }
        if ok:
            self.messages.append(message)
        return message

    @staticmethod
    def _json(status: int, code: str, msg: str, data) -> Response:
        return Response(
            json.dumps({"http_code": status, "response_code": code, "response_msg": msg, "data": data}),
            status=status, mimetype="application/json",
        )

    def _handle(self, request: Request) -> Response | None:
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            body = {"_raw": request.get_data(as_text=True)}
        with self._lock:
            self.requests.append(Seen(request.method, request.path, body, dict(request.args)))
            return self._answer(request, body)

    def _answer(self, request: Request, body: dict) -> Response | None:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.username != self.username or auth.password != self.api_key:
            return self._json(401, "UNAUTHORIZED", "Invalid username or api key.", None)
        if request.path == "/v3/sms/send" and request.method == "POST":
            return self._send(body)
        if request.path == "/v3/sms/history" and request.method == "GET":
            return self._history(request)
        return self._json(404, "NOT_FOUND", "Resource not found.", None)

    def _send(self, body: dict) -> Response | None:
        items = body.get("messages")
        if not isinstance(items, list) or not items:
            return self._json(400, "BAD_REQUEST", "messages: at least one message is required.", None)
        if self.drop_after is not None and len(self.messages) >= self.drop_after:
            if self.accept_dropped:
                for item in items:
                    self._message(item, "SUCCESS")
            return None
        out = [self._message(i, "INVALID_RECIPIENT" if i.get("to") in self.invalid else "SUCCESS") for i in items]
        sent = [m for m in out if m["status"] == "SUCCESS"]
        data = {
            "total_price": round(sum(float(m["message_price"]) for m in sent), 4),
            "total_count": len(out),
            "queued_count": len(sent),
            "messages": out,
            "_currency": CURRENCY,
            "blocked_count": 0,
        }
        return self._json(200, "SUCCESS", "Messages queued for delivery.", data)

    def _history(self, request: Request) -> Response:
        found = list(self.messages)
        query = request.args.get("q", "")
        if query.startswith("to:"):
            found = [m for m in found if m["to"] == query[3:]]
        if "date_from" in request.args:
            found = [m for m in found if m["date"] >= int(request.args["date_from"])]
        if "date_to" in request.args:
            found = [m for m in found if m["date"] <= int(request.args["date_to"])]
        if request.args.get("order_by") == "date:desc":
            found.reverse()
        limit = int(request.args.get("limit", 15))
        page = [{**m, "schedule": str(m["schedule"]), "status": "Sent", "message_price": m["message_price"]}
                for m in found[:limit]]
        data = {
            "total": len(found), "per_page": limit, "current_page": 1, "last_page": 1,
            "next_page_url": None, "prev_page_url": None, "from": 1, "to": len(page), "data": page,
        }
        return self._json(200, "SUCCESS", "Here are your data.", data)
