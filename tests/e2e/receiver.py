"""A webhook receiver on 127.0.0.1 for the tests: a real HTTP server on a
thread that records every request (path and query, headers, body) and
answers an error to the first ``fail`` requests (or to all with
``fail=-1``), then 204."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from standardwebhooks import Webhook

if TYPE_CHECKING:
    from typing_extensions import Self

HOST = "127.0.0.1"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class Receiver:
    fail: int = 0
    fail_status: int = 500
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    failing = receiver.fail < 0 or receiver.fail > 0
                    if receiver.fail > 0:
                        receiver.fail -= 1
                    status = receiver.fail_status if failing else 204
                    receiver.requests.append(Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body, status,
                    ))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status < 300]

    def verified(self, secret: str) -> list[dict]:
        """The payloads of the accepted requests, each verified with the
        endpoint's secret as a receiver does (raises on a bad signature)."""
        return [Webhook(secret).verify(r.body, r.headers) for r in self.accepted()]
