"""Test a campaign's links before the SMS goes out.

Each destination is fetched the way a visitor's phone would open it: with
its UTM parameters and a sample click id in the address, following at most
:data:`MAX_REDIRECTS` redirects. The check tells whether the page answers,
how fast, where it lands, whether it loads the smstrack snippet (without it
no conversion is recorded) and whether it is made for phones (a
``width=device-width`` viewport). Every failure (refused connection, timeout,
bad certificate...) becomes a plain-language problem of its link; nothing is
raised.

Destinations are checked side by side in a small thread pool. The fetches
need no application context; :func:`check_campaign_links` reads the links
and the configuration first, in the caller's context.
"""
from __future__ import annotations

import codecs
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
from flask import current_app
from sqlalchemy import select

from ..config import Keys
from ..models import Campaign, Link
from ..state import get_state
from ..tracking.clicks import click_id_slot, destination_for, new_click_id
from .pinning import Resolver, pinned, system_resolver

logger = logging.getLogger("flask_smstrack")

#: More redirects than this fail the check, as they fail many browsers.
MAX_REDIRECTS = 5
#: Redirects from this many on are reported as a warning: each one costs a
#: phone a round trip before the page starts to load.
MANY_REDIRECTS = 3
#: Only this much of a page is read and parsed.
MAX_BODY_BYTES = 1024 * 1024
#: Pages slower than this (milliseconds, redirects included) get a warning.
SLOW_MS = 3000
#: Destinations checked at the same time.
MAX_WORKERS = 8
#: Sent as the ``User-Agent``: a phone's browser, so that sites serve what
#: visitors get, marked so that site owners can recognise the check.
USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1 flask-smstrack-linkcheck"
)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass
class LinkCheck:
    """What fetching one destination showed.

    ``errors`` make the page unusable for visitors; ``warnings`` cost
    conversions or comfort. ``has_snippet`` and ``has_viewport`` are
    ``None`` when the page could not be checked (an error, or not HTML).
    """

    #: The URL fetched: the destination with its UTM parameters and, when the
    #: link appends it, a sample click id.
    url: str
    #: Short codes of the campaign links going to this destination.
    codes: list[str] = field(default_factory=list)
    #: HTTP status of the last answer, ``None`` when there was none.
    status: int | None = None
    #: Where the redirects ended.
    final_url: str | None = None
    redirects: int = 0
    #: Time from the first request to the page read (at most 1 MB), in milliseconds.
    elapsed_ms: int | None = None
    content_type: str | None = None
    has_snippet: bool | None = None
    has_viewport: bool | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Remarks that are not problems, such as a check that was skipped.
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``"error"``, ``"warning"`` or ``"ok"``."""
        if self.errors:
            return "error"
        return "warning" if self.warnings else "ok"

    @property
    def problems(self) -> list[str]:
        """Errors, then warnings, in plain language."""
        return [*self.errors, *self.warnings]

    def as_dict(self) -> dict[str, Any]:
        """The check as JSON-ready values, with its verdict."""
        return {"verdict": self.verdict, **asdict(self)}


class _PageParser(HTMLParser):
    """Collects the ``<script src>`` URLs and the viewport ``<meta>`` of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.script_srcs: list[str] = []
        self.viewports: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and values.get("src"):
            self.script_srcs.append(values["src"].strip())
        elif tag == "meta" and values.get("name", "").strip().lower() == "viewport":
            self.viewports.append(values.get("content", ""))

    handle_startendtag = handle_starttag


def _is_snippet(src: str, snippet_path: str) -> bool:
    path = urlsplit(src).path.rstrip("/")
    return path.endswith(snippet_path) or path.endswith("smstrack/t.js")


def _is_mobile_viewport(content: str) -> bool:
    items = (item.partition("=") for item in content.replace(";", ",").split(","))
    return any(k.strip().lower() == "width" and v.strip().lower() == "device-width" for k, _, v in items)


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip("\"'")).name
            except LookupError:
                break
    return "utf-8"


def _looks_like_html(body: bytes) -> bool:
    start = body[:512].lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html"))


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and everything behind it: causes, contexts, urllib3's reasons."""
    found: list[BaseException] = []
    todo = [err]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is f for f in found) or len(found) > 20:
            continue
        found.append(current)
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        todo += [arg for arg in current.args if isinstance(arg, BaseException)]
    return found


def _is_timeout(err: BaseException) -> bool:
    return any(isinstance(e, (TimeoutError, requests.Timeout)) or type(e).__name__ in ("ReadTimeoutError", "ConnectTimeoutError") for e in _causes(err))


def _cause(err: BaseException) -> str:
    """A plain reason for a connection failure, from what is behind it."""
    causes = _causes(err)
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return "the connection was refused (nothing answers at that address)"
    if any(type(e).__name__ in ("NameResolutionError", "gaierror") for e in causes):
        return "the host name does not exist (check the spelling of the address)"
    if any(isinstance(e, ConnectionResetError) or type(e).__name__ == "RemoteDisconnected" for e in causes):
        return "the server closed the connection without answering"
    return "the server could not be reached"


def _seconds(timeout: float) -> str:
    return f"{timeout:g} s"


class _PrivateAddress(Exception):
    """The address is on this server or its private network."""


def _checked_address(url: str, resolve: Resolver, allow_private: bool) -> str:
    """The address to connect to for ``url``, resolved once: the check runs
    on the server, and must not become a way to look inside its network, so
    a host with a loopback, private, link-local or otherwise non-public
    address raises :class:`_PrivateAddress` unless ``allow_private``."""
    host = urlsplit(url).hostname
    if not host:
        raise requests.exceptions.InvalidURL(url)
    try:
        addresses = resolve(host)
    except (OSError, UnicodeError) as err:
        raise requests.ConnectionError(err) from None
    if not addresses:
        raise requests.ConnectionError(socket.gaierror(f"no address for {host}"))
    for raw in addresses:
        address = ipaddress.ip_address(raw)
        if not allow_private and not address.is_global:
            raise _PrivateAddress(f"{host} is a private address ({address})")
    return addresses[0]


def _fetch(
    session: requests.Session, url: str, deadline: float, result: LinkCheck, *, resolve: Resolver,
    allow_private: bool = False,
) -> bytes | None:
    """GET ``url`` and what it redirects to, each from the address checked
    for its host (see :mod:`.pinning`); fill ``result`` with the last
    answer. Returns up to :data:`MAX_BODY_BYTES` of the final body, or
    ``None`` when the check stopped with an error."""
    seen = {url}
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise requests.Timeout()
        target, host_header, adapter = pinned(url, _checked_address(url, resolve, allow_private))
        for scheme in ("http://", "https://"):
            session.mount(scheme, adapter)
        with closing(adapter), session.get(
            target, headers=host_header, allow_redirects=False, stream=True, timeout=(remaining, remaining)
        ) as response:
            result.status = response.status_code
            result.final_url = url
            location = response.headers.get("Location")
            if response.status_code in _REDIRECT_STATUSES and location:
                target = urljoin(url, location.strip())
                if urlsplit(target).scheme not in ("http", "https"):
                    result.errors.append(
                        f"redirects to {target[:80]}, which is not a web address: phones without the right app cannot open it"
                    )
                    return None
                result.redirects += 1
                if target in seen:
                    result.errors.append("redirects in a loop (too many redirects): it comes back to an address it already went through")
                    return None
                if result.redirects > MAX_REDIRECTS:
                    result.errors.append(f"too many redirects: more than {MAX_REDIRECTS} before landing on a page")
                    return None
                seen.add(target)
                url = target
                continue
            result.content_type = response.headers.get("Content-Type")
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) >= MAX_BODY_BYTES:
                    break
                if time.monotonic() > deadline:
                    raise requests.Timeout()
            return bytes(body[:MAX_BODY_BYTES])


def check_url(
    url: str,
    timeout: float = 10,
    *,
    snippet_path: str = "/smstrack/t.js",
    click_param: str | None = None,
    allow_private: bool = False,
    resolve: Resolver = system_resolver,
) -> LinkCheck:
    """Fetch ``url`` as a visitor's phone would and report what it found.

    ``timeout`` (seconds) bounds the whole check: connecting, every
    redirect and reading the page. A ``<script>`` whose ``src`` path ends
    with ``snippet_path`` (or ``smstrack/t.js``) counts as the snippet.
    When ``click_param`` is given and ``url`` carries it, the page the
    redirects land on must still carry it, since the snippet reads the click
    id from the page's address.

    Addresses on the server's own network (loopback, private, link-local)
    are refused unless ``allow_private``. Each host is resolved once, with
    ``resolve``, and the page is fetched from the address checked.

    Never raises for a network failure: it becomes one of the returned
    check's ``errors``.
    """
    result = LinkCheck(url=url)
    started = time.monotonic()
    deadline = started + timeout
    try:
        with requests.Session() as session:
            session.headers.update({"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
            body = _fetch(session, url, deadline, result, resolve=resolve, allow_private=allow_private)
    except _PrivateAddress as err:
        result.errors.append(
            f"not checked: {err}, on this server's own network; set {Keys.LINK_CHECK_PRIVATE_ADDRESSES}"
            " to check such pages"
        )
        body = None
    except requests.exceptions.SSLError:
        result.errors.append(
            "the secure (https) connection failed: the site's certificate is not valid for this address"
            " or has expired, or the server does not speak https"
        )
        body = None
    except (requests.Timeout, TimeoutError):
        result.errors.append(f"timed out after {_seconds(timeout)}: the page did not answer in time")
        body = None
    except requests.ConnectionError as err:
        # A stalled body arrives as a ConnectionError around urllib3's read timeout.
        if _is_timeout(err):
            result.errors.append(f"timed out after {_seconds(timeout)}: the page did not answer in time")
        else:
            result.errors.append(f"could not connect: {_cause(err)}")
        body = None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
        result.errors.append("the address is not a valid web address")
        body = None
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
        result.errors.append("the page was cut off or garbled while loading")
        body = None
    except requests.RequestException as err:
        result.errors.append(f"the request failed: {type(err).__name__}")
        body = None
    except (ValueError, UnicodeError):
        # urllib3 and idna refuse some addresses the schema let through.
        result.errors.append("the address is not a valid web address")
        body = None
    except Exception:
        logger.exception("Link check of %s failed", url)
        result.errors.append("the check itself failed; see the server log")
        body = None
    result.elapsed_ms = round((time.monotonic() - started) * 1000)
    if body is None:
        return result

    status = result.status or 0
    if status >= 400:
        result.errors.append(f"returned {status}: visitors would see an error page")
    elif status >= 300:
        result.errors.append(f"returned {status} without saying where to go: visitors would see a blank page")
    if result.redirects >= MANY_REDIRECTS:
        result.warnings.append(f"redirects {result.redirects} times before landing: every hop slows the page down on a phone")
    if result.elapsed_ms > SLOW_MS and not result.errors:
        result.warnings.append(f"slow: took {result.elapsed_ms / 1000:.1f} s to load, and people on phones give up quickly")
    if click_param and result.final_url and result.redirects:
        sent = any(k == click_param for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True))
        kept = any(k == click_param for k, _ in parse_qsl(urlsplit(result.final_url).query, keep_blank_values=True))
        if sent and not kept:
            result.warnings.append(
                f"the click id ({click_param}) is lost on the way: a redirect drops it from the address,"
                " so conversions can only be attributed through the tracker's cookie"
            )
    if result.errors:
        return result

    content_type = (result.content_type or "").strip()
    mimetype = content_type.split(";")[0].strip().lower()
    if mimetype not in _HTML_TYPES and not (not mimetype and _looks_like_html(body)):
        result.warnings.append(
            f"not a web page ({mimetype or 'no content type'}): the snippet cannot run there, so conversions will not be recorded"
        )
        result.notes.append("snippet and mobile viewport not checked: the answer is not HTML")
        return result

    parser = _PageParser()
    try:
        parser.feed(body.decode(_charset(content_type), errors="replace"))
        parser.close()
    except AssertionError:  # pragma: no cover - malformed markup the parser gives up on
        pass
    result.has_snippet = any(_is_snippet(src, snippet_path) for src in parser.script_srcs)
    result.has_viewport = any(_is_mobile_viewport(content) for content in parser.viewports)
    if not result.has_snippet:
        result.warnings.append("page does not load the smstrack snippet: conversions will not be recorded")
    if not result.has_viewport:
        result.warnings.append("no mobile viewport tag: the page will look zoomed out on phones")
    if len(body) >= MAX_BODY_BYTES:
        result.notes.append("only the first 1 MB of the page was checked")
    return result


@dataclass
class _Destination:
    url: str
    codes: list[str]
    click_param: str | None


def _destinations(campaign: Campaign) -> list[_Destination]:
    """The campaign links' distinct destinations, as a visitor gets them,
    in the order of their first link. Per-recipient links share the
    destination of their campaign link and are left out."""
    param = current_app.config[Keys.CLICK_PARAM]
    links = get_state().db.session.execute(
        select(Link).where(Link.campaign_id == campaign.id, Link.recipient_id.is_(None)).order_by(Link.id)
    ).scalars()
    grouped: dict[tuple[str, bool], _Destination] = {}
    for link in links:
        destination = destination_for(link)
        key = (destination, bool(link.append_click_id))
        if key not in grouped:
            if link.append_click_id:
                before, after = click_id_slot(destination, param)
                grouped[key] = _Destination(before + new_click_id() + after, [], param)
            else:
                grouped[key] = _Destination(destination, [], None)
        grouped[key].codes.append(link.code)
    return list(grouped.values())


def count_destinations(campaign: Campaign) -> int:
    """How many checks :func:`check_campaign_links` will make (for a progress bar)."""
    return len(_destinations(campaign))


def check_campaign_links(
    campaign: Campaign,
    *,
    timeout: float | None = None,
    progress: Callable[[int], Any] | None = None,
) -> list[LinkCheck]:
    """Check every distinct destination of ``campaign``'s links.

    Needs an application context. ``timeout`` defaults to
    ``SMSTRACK_LINK_CHECK_TIMEOUT``; ``progress(1)`` is called, from the
    calling thread, as each destination is done. Returns one
    :class:`LinkCheck` per destination, in the order of the links.
    """
    config = current_app.config
    if timeout is None:
        timeout = float(config[Keys.LINK_CHECK_TIMEOUT])
    snippet_path = config[Keys.URL_PREFIX].rstrip("/") + "/t.js"
    destinations = _destinations(campaign)
    results: list[LinkCheck | None] = [None] * len(destinations)
    if not destinations:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(destinations)), thread_name_prefix="smstrack-linkcheck") as pool:
        futures = {
            pool.submit(
                check_url, d.url, timeout, snippet_path=snippet_path, click_param=d.click_param,
                allow_private=bool(config[Keys.LINK_CHECK_PRIVATE_ADDRESSES]),
            ): i
            for i, d in enumerate(destinations)
        }
        for future in as_completed(futures):
            i = futures[future]
            check = future.result()
            check.codes = destinations[i].codes
            results[i] = check
            if progress is not None:
                progress(1)
    return [r for r in results if r is not None]
