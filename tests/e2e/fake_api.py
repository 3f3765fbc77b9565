"""What the fake provider APIs share: a threaded WSGI server on 127.0.0.1.

A fake is a dataclass that subclasses :class:`FakeApi`, sets ``name`` and
answers each request in ``_handle``; answering ``None`` drops the
connection without an answer (a crash mid-send, seen from the client).
"""
from __future__ import annotations

import socket
import threading
from typing import ClassVar, Self

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class FakeApi:
    #: The provider's name, in thread names and errors.
    name: ClassVar[str] = "API"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = None
        self._thread: threading.Thread | None = None

    # -- running ----------------------------------------------------------

    def __enter__(self) -> Self:
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{self.name.lower()}",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def wsgi(self, environ, start_response):
        response = self._handle(Request(environ))
        if response is None:  # close the connection without an answer
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            raise ConnectionAbortedError(f"dropped by the fake {self.name}")
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response | None:
        raise NotImplementedError
