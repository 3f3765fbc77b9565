"""Rate limits on the collector, the API and the dashboard login, and the
tracked redirect's flood counter.

Each app gets a Flask-Limiter ``Limiter`` of its own. It reads the
``SMSTRACK_RATELIMIT_*`` keys only (never a host's ``RATELIMIT_*``
settings), names its counters with ``SMSTRACK_RATELIMIT_KEY_PREFIX``, and
checks requests to the collector and the API only: a host app's own
Flask-Limiter, and the host's routes, are left alone.

- Collector posts: per client address (a Flask-Limiter limit on the
  blueprint); per click id, and per address for click ids that do not exist
  (:func:`limit_click`, once the body is read).
- API: per API key, per user for session callers, per address otherwise.
- Login: failures per account and per address; after half the allowed
  failures each new try waits, twice as long after each failure, and after
  all of them the account or address is refused for the period
  (:func:`login_wait`, :func:`login_failed`, :func:`login_succeeded`).
- Redirect: never refused; see :mod:`flask_smstrack.tracking.flood`.

A refused request gets a ``429`` with ``Retry-After`` and the JSON error
body naming the limit (the login its own page). When the storage fails,
counting goes on in each process's memory, and a request is never refused
or broken because of it.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Flask, current_app, request
from flask_limiter import Limiter, RequestLimit
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage
from werkzeug.wrappers import Response

from ..config import Keys
from ..errors import TooManyRequests
from ..state import get_state
from ..tracking.conversions import find_click
from ..tracking.flood import FloodCounter, address_key

logger = logging.getLogger("flask_smstrack")

#: Seconds the counters stay in each process's memory after the shared
#: storage failed, before it is tried again.
STORAGE_RETRY = 30.0


#: The keys that take one rate; the others may join several with ``;``.
_ONE_RATE = (Keys.RATELIMIT_REDIRECT, Keys.RATELIMIT_LOGIN_ACCOUNT, Keys.RATELIMIT_LOGIN_ADDRESS)


def _rates(config, key: str) -> list[RateLimitItem]:
    value = config[key]
    try:
        rates = parse_many(str(value))
    except ValueError:
        rates = []
    if not rates or (key in _ONE_RATE and len(rates) > 1):
        example = "'300 per minute'" if key in _ONE_RATE else "'300 per minute' or '20/second;300/minute'"
        raise RuntimeError(f"{key} must be a rate such as {example}, not {value!r}.")
    return rates


class _Scope:
    """What ``Limiter.init_app`` sees of the app: settings of its own instead
    of ``app.config`` (so a host's ``RATELIMIT_*`` keys are never read or
    written), and request hooks that run on the limited blueprints only."""

    def __init__(self, app: Flask, blueprints: tuple[str, ...]) -> None:
        self.config: dict[str, Any] = {}
        self.extensions: dict[str, Any] = {}
        self._app, self._blueprints = app, blueprints

    def _add(self, hooks: dict, f: Callable) -> Callable:
        # First, so that a request is counted before the blueprint's own
        # hooks (the API's authentication) refuse it.
        for name in self._blueprints:
            hooks.setdefault(name, []).insert(0, f)
        return f

    def before_request(self, f: Callable) -> Callable:
        return self._add(self._app.before_request_funcs, f)

    def after_request(self, f: Callable) -> Callable:
        return self._add(self._app.after_request_funcs, f)

    def teardown_request(self, f: Callable) -> Callable:
        return self._add(self._app.teardown_request_funcs, f)


class _Counters:
    """Plain counters in the limiter's storage, for the login; in this
    process's memory for a while after the storage failed."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self._local: MemoryStorage | None = None
        self._down_until = 0.0

    def __call__(self, method: str, *args: Any) -> Any:
        if time.monotonic() >= self._down_until:
            try:
                return getattr(self.storage, method)(*args)
            except Exception:
                logger.warning("Rate limit storage failed; counting logins in this process for now", exc_info=True)
                self._down_until = time.monotonic() + STORAGE_RETRY
        if self._local is None:
            self._local = MemoryStorage()
        return getattr(self._local, method)(*args)


@dataclass(eq=False)
class RateLimits:
    """One app's limiter and the limits it checks by hand."""

    limiter: Limiter
    prefix: str
    collect_click: list[RateLimitItem]
    collect_unknown: list[RateLimitItem]
    login_account: RateLimitItem
    login_address: RateLimitItem
    login_delay: int
    counters: _Counters = field(repr=False)


def setup_limits(app: Flask) -> None:
    """Give ``app`` its limiter and the redirect its flood counter, from
    the ``SMSTRACK_RATELIMIT_*`` keys; nothing when they are off."""
    from .api import bp as api_bp
    from .collect import bp as collect_bp

    c = app.config
    state = app.extensions["smstrack"]
    if not c[Keys.RATELIMIT_ENABLED]:
        return
    rates = {
        key: _rates(c, key)
        for key in (
            Keys.RATELIMIT_COLLECT, Keys.RATELIMIT_COLLECT_CLICK, Keys.RATELIMIT_COLLECT_UNKNOWN,
            Keys.RATELIMIT_API, Keys.RATELIMIT_REDIRECT, Keys.RATELIMIT_LOGIN_ACCOUNT, Keys.RATELIMIT_LOGIN_ADDRESS,
        )
    }
    try:
        delay = max(1, math.ceil(float(c[Keys.RATELIMIT_LOGIN_DELAY])))
    except (TypeError, ValueError):
        raise RuntimeError(f"{Keys.RATELIMIT_LOGIN_DELAY} must be a number of seconds, such as 1.") from None
    # Without a storage of their own, the counters share the nodes' Redis.
    uri = c[Keys.RATELIMIT_STORAGE_URI] or c[Keys.REDIS_URL] or "memory://"
    options: dict[str, Any] = {}
    if uri.startswith(("redis://", "rediss://", "redis+unix://")):
        # A Redis that stopped answering must not hold requests for long.
        options = {"socket_connect_timeout": 1, "socket_timeout": 1}
    prefix = str(c[Keys.RATELIMIT_KEY_PREFIX])
    limiter = Limiter(
        _address,
        storage_uri=uri,
        storage_options=options,
        strategy="fixed-window",
        key_prefix=prefix,
        headers_enabled=False,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    try:
        limiter.init_app(_Scope(app, (collect_bp.name, api_bp.name)))  # type: ignore[arg-type]
    except ConfigurationError as err:
        raise RuntimeError(
            f"{Keys.RATELIMIT_STORAGE_URI} is {uri!r}, which cannot be used: {err}."
            " For Redis, install flask-smstrack[redis]; unset it to count in memory."
        ) from None
    limiter.shared_limit(
        c[Keys.RATELIMIT_COLLECT], "collect", key_func=_address, methods=["POST"],
        on_breach=_breach("collector posts from this address", Keys.RATELIMIT_COLLECT),
    )(collect_bp)
    limiter.shared_limit(
        c[Keys.RATELIMIT_API], "api", key_func=_api_caller,
        on_breach=_breach("API requests from this caller", Keys.RATELIMIT_API),
    )(api_bp)

    redirect = rates[Keys.RATELIMIT_REDIRECT][0]
    shared = None if uri.startswith("memory:") else limiter.storage
    state.flood = FloodCounter(redirect.amount, redirect.get_expiry(), shared, prefix)
    state.limits = RateLimits(
        limiter=limiter,
        prefix=prefix,
        collect_click=rates[Keys.RATELIMIT_COLLECT_CLICK],
        collect_unknown=rates[Keys.RATELIMIT_COLLECT_UNKNOWN],
        login_account=rates[Keys.RATELIMIT_LOGIN_ACCOUNT][0],
        login_address=rates[Keys.RATELIMIT_LOGIN_ADDRESS][0],
        login_delay=delay,
        counters=_Counters(limiter.storage),
    )


def _address() -> str:
    """The client's address as the app sees it (after ``ProxyFix``)."""
    return address_key(request.remote_addr)


def _api_caller() -> str:
    """An API key (by its hash), else the signed-in user, else the address."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return "key:" + hashlib.sha256(key.strip().encode()).hexdigest()[:32]
    if getattr(current_app, "login_manager", None) is not None:
        from flask_login import current_user

        if current_user.is_authenticated:
            return f"user:{current_user.get_id()}"
    return "address:" + _address()


def _seconds(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))


def _in(seconds: int) -> str:
    """``seconds`` as a person reads a wait: 1 second, 42 seconds, 15 minutes."""
    if seconds >= 90:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _too_many(what: str, key: str, rate: RateLimitItem, retry_after: int) -> TooManyRequests:
    return TooManyRequests(
        {"rate_limit": [f"Too many {what}: at most {rate} ({key}). Try again in {_in(retry_after)}."]},
        headers={"Retry-After": str(retry_after)},
    )


def _breach(what: str, key: str) -> Callable[[RequestLimit], Response]:
    """The answer when a Flask-Limiter limit is used up."""

    def answer(limit: RequestLimit) -> Response:
        try:
            retry_after = _seconds(limit.window.reset_time)
        except Exception:  # the storage failed just now: a guess
            retry_after = int(limit.limit.get_expiry())
        # Flask-Limiter answers with what this returns when it is Flask's own
        # response class.
        return current_app.make_response(_too_many(what, key, limit.limit, retry_after).get_response())

    return answer


def _hit(limits: RateLimits, rates: list[RateLimitItem], what: str, key: str, *identifiers: str) -> None:
    """Count one request against each of ``rates``; a 429 when one is used up."""
    for rate in rates:
        try:
            strategy = limits.limiter.limiter
            if strategy.hit(rate, limits.prefix, *identifiers):
                continue
            retry_after = _seconds(strategy.get_window_stats(rate, limits.prefix, *identifiers).reset_time)
        except Exception:
            logger.warning("Rate limit storage failed; %s not limited", what, exc_info=True)
            return
        raise _too_many(what, key, rate, retry_after)


def limit_click(click_id: str | None) -> None:
    """The collector's limits on a post naming ``click_id``: per click id,
    and per address when no such click exists. A 429 when one is used up."""
    limits = get_state().limits
    if limits is None or not click_id:
        return
    _hit(limits, limits.collect_click, "posts naming this click id", Keys.RATELIMIT_COLLECT_CLICK,
         click_id, "collect-click")
    if find_click(click_id) is None:
        _hit(limits, limits.collect_unknown, "posts naming unknown click ids from this address",
             Keys.RATELIMIT_COLLECT_UNKNOWN, _address(), "collect-unknown")


# -- login ------------------------------------------------------------------


@dataclass(frozen=True)
class LoginWait:
    """How long a login must wait before it is tried."""

    seconds: int

    @property
    def message(self) -> str:
        return f"Too many failed logins for this account or from your network. Try again in {_in(self.seconds)}."


def _login_subjects(limits: RateLimits, email: str) -> list[tuple[str, RateLimitItem]]:
    return [
        (_account_subject(limits, email), limits.login_account),
        (f"{limits.prefix}/login/address/{_address()}", limits.login_address),
    ]


def _slowed_after(rate: RateLimitItem) -> int:
    """Failures after which each new try waits: half the allowed ones."""
    return max(1, rate.amount // 2)


def login_wait(email: str) -> LoginWait | None:
    """Whether a login to ``email`` from this address must wait (checked
    before its password); ``None`` when it may be tried now."""
    limits = get_state().limits
    if limits is None:
        return None
    counters, longest = limits.counters, 0
    for subject, rate in _login_subjects(limits, email):
        gate = f"{subject}/locked"
        if not counters("get", gate):
            failures = counters("get", f"{subject}/failures")
            if failures < _slowed_after(rate):
                continue
            gate = f"{subject}/wait/{failures}"
            if not counters("get", gate):
                continue
        longest = max(longest, _seconds(counters("get_expiry", gate)))
    return LoginWait(longest) if longest else None


def login_failed(email: str) -> None:
    """Count a failed login to ``email`` from this address."""
    limits = get_state().limits
    if limits is None:
        return
    counters = limits.counters
    for subject, rate in _login_subjects(limits, email):
        period = int(rate.get_expiry())
        failures = counters("incr", f"{subject}/failures", period)
        if failures >= rate.amount:
            counters("incr", f"{subject}/locked", period)
        elif failures >= _slowed_after(rate):
            wait = limits.login_delay * 2 ** min(failures - _slowed_after(rate), 20)
            counters("incr", f"{subject}/wait/{failures}", min(period, wait))


def _account_subject(limits: RateLimits, email: str) -> str:
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"{limits.prefix}/login/account/{account}"


def login_succeeded(email: str) -> None:
    """Forget the account's failed logins (not the address's)."""
    limits = get_state().limits
    if limits is None:
        return
    limits.counters("clear", f"{_account_subject(limits, email)}/failures")


def unlock_account(email: str) -> None:
    """Forget the account's failed logins and end its lockout: a new
    password set from the command line can be used at once."""
    limits = get_state().limits
    if limits is None:
        return
    subject = _account_subject(limits, email)
    limits.counters("clear", f"{subject}/failures")
    limits.counters("clear", f"{subject}/locked")
