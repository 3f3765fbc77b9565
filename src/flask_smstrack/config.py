"""Every configuration key flask-smstrack reads, spelled once, with its default.

Code reads a key through its name here, never through a string of its own::

    from .config import Keys
    current_app.config[Keys.LINK_PREFIX]

:meth:`flask_smstrack.SmsTrack.init_app` applies the defaults to
``app.config`` with ``setdefault``, so a host app can set any key before or
after constructing the extension, and warns about ``SMSTRACK_*`` names that
are not keys (a typo names the nearest key). The README's config table lists
the same keys.
"""
from __future__ import annotations

import difflib
import textwrap
import warnings
from typing import Any, Mapping

#: Every key read from ``app.config``, with its default.
DEFAULTS: dict[str, Any] = {}
#: Keys that the standalone app reads from the environment only, with their
#: defaults; they are never read from ``app.config``.
ENVIRONMENT_ONLY: dict[str, Any] = {}
PREFIX = "SMSTRACK_"
#: The SMS providers a campaign can name (``SMSTRACK_SMS_PROVIDER``).
SMS_PROVIDERS = ("twilio", "clicksend")


def _key(name: str, default: Any) -> str:
    DEFAULTS[name] = default
    return name


def _env_key(name: str, default: Any) -> str:
    ENVIRONMENT_ONLY[name] = default
    return name


class Keys:
    """The name of every key, as ``Keys.LINK_PREFIX == "SMSTRACK_LINK_PREFIX"``."""

    #: URL prefix of the tracked redirect: ``/s/<code>``.
    LINK_PREFIX = _key("SMSTRACK_LINK_PREFIX", "/s")

    #: URL prefix of the snippet, collector, API and dashboard.
    URL_PREFIX = _key("SMSTRACK_URL_PREFIX", "/smstrack")

    #: Public base URL used to build short links (``https://go.example.com``).
    #: ``None`` uses the URL of the current request.
    BASE_URL = _key("SMSTRACK_BASE_URL", None)

    #: Query parameter that carries the click id to the landing page.
    CLICK_PARAM = _key("SMSTRACK_CLICK_PARAM", "smsclid")

    #: Name of the attribution cookie set by the redirect (HttpOnly).
    COOKIE_NAME = _key("SMSTRACK_COOKIE_NAME", "smsclid")

    #: Name of the first-party cookie the snippet keeps on the landing domain.
    SNIPPET_COOKIE_NAME = _key("SMSTRACK_SNIPPET_COOKIE_NAME", "_smsclid")

    #: Domain of the attribution cookie, e.g. ``.example.com``. ``None`` means
    #: the host that served the redirect.
    COOKIE_DOMAIN = _key("SMSTRACK_COOKIE_DOMAIN", None)

    #: Lifetime of the attribution cookie, in days.
    COOKIE_DAYS = _key("SMSTRACK_COOKIE_DAYS", 30)

    #: ``True``, ``False`` or ``None`` (secure when the request came over
    #: https).
    COOKIE_SECURE = _key("SMSTRACK_COOKIE_SECURE", None)

    #: Conversions count for a click made at most this many days before.
    ATTRIBUTION_WINDOW_DAYS = _key("SMSTRACK_ATTRIBUTION_WINDOW_DAYS", 30)

    #: ``"last"`` (the click named by the conversion) or ``"first"`` (the
    #: visitor's first click within the window).
    ATTRIBUTION_MODEL = _key("SMSTRACK_ATTRIBUTION_MODEL", "last")

    #: Where unknown codes are redirected. ``None`` answers with a 404 page.
    FALLBACK_URL = _key("SMSTRACK_FALLBACK_URL", None)

    #: Seconds a link looked up by the redirect stays in the in-process cache.
    #: Short, so that several nodes stay consistent after an edit.
    LINK_CACHE_TTL = _key("SMSTRACK_LINK_CACHE_TTL", 30)

    #: How many links the in-process cache holds at most, expired ones
    #: included: an expired link is still served while the database is down.
    LINK_CACHE_SIZE = _key("SMSTRACK_LINK_CACHE_SIZE", 10_000)

    #: Length of generated short codes (base62, at least 7).
    CODE_LENGTH = _key("SMSTRACK_CODE_LENGTH", 8)

    #: Request header holding the visitor's country, set by a trusted proxy
    #: (``"CF-IPCountry"`` behind Cloudflare). ``None`` never reads a header.
    COUNTRY_HEADER = _key("SMSTRACK_COUNTRY_HEADER", None)

    #: Path to a MaxMind-format ``.mmdb`` country or city database. ``None``
    #: uses the offline table shipped with the ``iptocc`` package.
    GEOIP_DB = _key("SMSTRACK_GEOIP_DB", None)

    #: Origins allowed to post to the collector: ``"*"`` or a list such as
    #: ``["https://shop.example.com"]``.
    ALLOWED_ORIGINS = _key("SMSTRACK_ALLOWED_ORIGINS", "*")

    #: Largest collector or API body accepted, in bytes.
    MAX_PAYLOAD_BYTES = _key("SMSTRACK_MAX_PAYLOAD_BYTES", 4096)

    #: Largest revenue accepted for one conversion.
    MAX_REVENUE = _key("SMSTRACK_MAX_REVENUE", "1000000000")

    #: Key of the conversion tokens that make a browser's conversion verified,
    #: and of the hashes that stand for forgotten and opted-out numbers
    #: (HMAC). ``None`` uses ``SECRET_KEY``. Keep it: with another key, the
    #: hashes stored before no longer match their numbers.
    SIGNING_KEY = _key("SMSTRACK_SIGNING_KEY", None)

    #: How long a conversion token is accepted, in seconds (a day: long
    #: enough for a thank-you page reopened from the browser's history).
    CONVERSION_TOKEN_TTL = _key("SMSTRACK_CONVERSION_TOKEN_TTL", 86400)

    #: Where clicks and conversions that the database could not take are
    #: kept until they are replayed (by each process in the background, or
    #: ``flask smstrack replay-spool``). ``None`` uses ``<instance folder>/
    #: smstrack-spool``.
    SPOOL_DIR = _key("SMSTRACK_SPOOL_DIR", None)

    #: Size in bytes of each process's spool segment, preallocated at start
    #: (``posix_fallocate``) so that a disk that fills up later cannot refuse
    #: spooled records. 64 MiB holds about 150,000 clicks.
    SPOOL_SIZE_BYTES = _key("SMSTRACK_SPOOL_SIZE_BYTES", 64 * 1024 * 1024)

    #: Where records go when ``SMSTRACK_SPOOL_DIR`` cannot take them, best on
    #: another filesystem. ``None``: a folder in ``/dev/shm`` (memory: it
    #: survives a crashed process, not a reboot) or else the temporary
    #: directory; ``""`` turns the fallback off.
    SPOOL_FALLBACK_DIR = _key("SMSTRACK_SPOOL_FALLBACK_DIR", None)

    #: How many records a process keeps in memory when neither spool
    #: directory takes them (lost if the process stops); past this, records
    #: are lost, counted and logged as critical.
    SPOOL_MEMORY_RECORDS = _key("SMSTRACK_SPOOL_MEMORY_RECORDS", 10000)

    #: Mean seconds between a process's attempts to replay its spool (each
    #: pause is 0.5-1.5 times this; doubled, up to 30 s, while the database
    #: stays down). ``0`` turns the background replay off.
    SPOOL_REPLAY_SECONDS = _key("SMSTRACK_SPOOL_REPLAY_SECONDS", 5.0)

    #: Put SQLite databases in WAL mode with ``synchronous=NORMAL`` on connect.
    SQLITE_WAL = _key("SMSTRACK_SQLITE_WAL", True)

    #: Largest size of a SQLite database's write-ahead log, in bytes (at
    #: least 1 MiB). Sets ``journal_size_limit`` on every connection, and a
    #: background thread checkpoints the log with ``TRUNCATE`` once it passes
    #: a quarter of this, so that readers cannot make it grow without bound.
    SQLITE_WAL_LIMIT_BYTES = _key("SMSTRACK_SQLITE_WAL_LIMIT_BYTES", 64 * 1024 * 1024)

    #: Region of phone numbers written without a country code, such as ``(415)
    #: 555-0100``: an ISO 3166 code like ``US`` or ``GB``.
    DEFAULT_REGION = _key("SMSTRACK_DEFAULT_REGION", "US")

    #: Largest recipient file accepted by the API, in bytes.
    MAX_IMPORT_BYTES = _key("SMSTRACK_MAX_IMPORT_BYTES", 20 * 1024 * 1024)

    #: Timezone of the dashboard's hours and days (an IANA name such as
    #: ``America/New_York``); each view can pick another.
    TIMEZONE = _key("SMSTRACK_TIMEZONE", "UTC")

    #: Wait for PostgreSQL to flush each click to disk before the redirect.
    #: ``False`` sets ``synchronous_commit = off`` on the connections that
    #: write clicks only: each click is still committed before its ``302``, but
    #: a crash of the database server may lose the last fraction of a second of
    #: clicks. Several times the click throughput on disks with slow fsync.
    CLICK_SYNC_COMMIT = _key("SMSTRACK_CLICK_SYNC_COMMIT", True)

    #: Answer a click on a live link before Flask's request dispatch
    #: (:mod:`flask_smstrack.web.fast_redirect`): about 40% less work per
    #: click, but the host app's ``before_request`` and ``after_request``
    #: hooks do not run for it. On in the standalone app; off by default when
    #: the extension is mounted in an app of your own.
    FAST_REDIRECT = _key("SMSTRACK_FAST_REDIRECT", False)

    #: Seconds the redirect waits for a new database connection (PostgreSQL)
    #: before it redirects from its cache and spools the click. Below libpq's
    #: own 2 s floor: the wait is enforced by flask-smstrack. The dashboard,
    #: reports and API keep the database's usual timeouts.
    DB_CONNECT_TIMEOUT = _key("SMSTRACK_DB_CONNECT_TIMEOUT", 0.5)

    #: Seconds a statement on the redirect's path (link lookup, click write)
    #: may take: PostgreSQL's ``statement_timeout`` on those connections, plus
    #: a cut of the connection when a hung server cannot time out; SQLite's
    #: busy timeout for the click writer.
    DB_STATEMENT_TIMEOUT = _key("SMSTRACK_DB_STATEMENT_TIMEOUT", 0.5)

    #: Register the dashboard login view and user loader when the host app has
    #: no Flask-Login ``LoginManager`` of its own.
    BUILTIN_USERS = _key("SMSTRACK_BUILTIN_USERS", True)

    #: How the built-in users' passwords are hashed when they are set: a
    #: method of :func:`werkzeug.security.generate_password_hash`, such as
    #: ``"scrypt"`` or ``"pbkdf2:sha256:1000000"``. Stored hashes name their
    #: own method, so they keep working after a change.
    PASSWORD_HASH_METHOD = _key("SMSTRACK_PASSWORD_HASH_METHOD", "scrypt")

    #: ``max-age`` of the ``Strict-Transport-Security`` header on the
    #: dashboard's, API's and collector's answers over https, in seconds; 0
    #: sends none (when a proxy or the host app sets it).
    HSTS_MAX_AGE = _key("SMSTRACK_HSTS_MAX_AGE", 31_536_000)

    #: Seconds the link checker (``flask smstrack check-links``, "Test links"
    #: on the dashboard) waits for each destination: connecting, redirects and
    #: loading the page together.
    LINK_CHECK_TIMEOUT = _key("SMSTRACK_LINK_CHECK_TIMEOUT", 10)

    #: Let the link checker fetch pages on this server's own network (loopback,
    #: private and link-local addresses). Off, so that a dashboard user cannot
    #: use it to look inside the network; turn it on to check a staging site.
    LINK_CHECK_PRIVATE_ADDRESSES = _key("SMSTRACK_LINK_CHECK_PRIVATE_ADDRESSES", False)

    #: Twilio Account SID for ``flask smstrack send`` and the webhooks.
    #: ``None`` reads the ``TWILIO_ACCOUNT_SID`` environment variable.
    TWILIO_ACCOUNT_SID = _key("SMSTRACK_TWILIO_ACCOUNT_SID", None)

    #: Twilio Auth Token: authenticates sends and verifies the signature of
    #: Twilio's webhooks. ``None`` reads the ``TWILIO_AUTH_TOKEN`` environment
    #: variable.
    TWILIO_AUTH_TOKEN = _key("SMSTRACK_TWILIO_AUTH_TOKEN", None)

    #: Messaging Service SID (``MG...``) to send from. Either this or
    #: ``SMSTRACK_TWILIO_FROM`` is needed; the service wins when both are set.
    TWILIO_MESSAGING_SERVICE_SID = _key("SMSTRACK_TWILIO_MESSAGING_SERVICE_SID", None)

    #: Twilio phone number (E.164), short code or alphanumeric sender ID to
    #: send from, when no Messaging Service is set.
    TWILIO_FROM = _key("SMSTRACK_TWILIO_FROM", None)

    #: Base URL of a Twilio-compatible API or a proxy in front of Twilio, such
    #: as ``http://127.0.0.1:8080``: requests for ``https://api.twilio.com`` go
    #: there instead. ``None`` talks to Twilio itself.
    TWILIO_API_URL = _key("SMSTRACK_TWILIO_API_URL", None)

    #: Who sends a campaign's messages when the campaign names no provider:
    #: ``twilio`` or ``clicksend``.
    SMS_PROVIDER = _key("SMSTRACK_SMS_PROVIDER", "twilio")

    #: ClickSend API username (the account's username or email).
    CLICKSEND_USERNAME = _key("SMSTRACK_CLICKSEND_USERNAME", None)

    #: ClickSend API key (Dashboard, API Credentials).
    CLICKSEND_API_KEY = _key("SMSTRACK_CLICKSEND_API_KEY", None)

    #: ClickSend sender ID (a dedicated number or an alpha tag); ``None``
    #: uses the account's default sender.
    CLICKSEND_FROM = _key("SMSTRACK_CLICKSEND_FROM", None)

    #: Base URL of ClickSend's REST API, or of a proxy in front of it.
    CLICKSEND_API_URL = _key("SMSTRACK_CLICKSEND_API_URL", "https://rest.clicksend.com")

    #: Secret that ClickSend's receipt and inbound URLs carry (as ``?secret=``
    #: or the password of basic auth); ``None`` refuses every ClickSend webhook.
    CLICKSEND_WEBHOOK_SECRET = _key("SMSTRACK_CLICKSEND_WEBHOOK_SECRET", None)

    #: Messages per second sent by ``flask smstrack send``. 1 is the limit of a
    #: Twilio long code; a Messaging Service with several numbers, a toll-free
    #: number or a short code allows more.
    SEND_RATE = _key("SMSTRACK_SEND_RATE", 1.0)

    #: Signing secret (``whsec_...``) of the Stripe webhook endpoint
    #: ``/smstrack/webhooks/stripe``; unset, that endpoint refuses every event.
    STRIPE_WEBHOOK_SECRET = _key("SMSTRACK_STRIPE_WEBHOOK_SECRET", None)

    #: Secret that signs Shopify's webhooks (``X-Shopify-Hmac-Sha256``) for
    #: ``/smstrack/webhooks/shopify``; unset, that endpoint refuses every event.
    SHOPIFY_WEBHOOK_SECRET = _key("SMSTRACK_SHOPIFY_WEBHOOK_SECRET", None)

    # -- privacy and compliance ---------------------------------------------

    #: Local hours of the recipient during which no message is sent, as
    #: ``"HH:MM-HH:MM"`` (the default is the TCPA window: nothing after 9 p.m.
    #: or before 8 a.m.). ``None`` sends at any hour.
    QUIET_HOURS = _key("SMSTRACK_QUIET_HOURS", "21:00-08:00")

    #: "Best time to send" recommends a local hour only when at least this
    #: many of the owner's campaigns were sent in it...
    BEST_TIME_MIN_CAMPAIGNS = _key("SMSTRACK_BEST_TIME_MIN_CAMPAIGNS", 3)

    #: ...and at least this many messages (delivered, or not known undelivered).
    BEST_TIME_MIN_MESSAGES = _key("SMSTRACK_BEST_TIME_MIN_MESSAGES", 200)

    #: Reply words that opt a number out, besides STOP, STOPALL, UNSUBSCRIBE,
    #: CANCEL, END and QUIT: a list such as ``["ARRET", "BAJA"]``.
    OPT_OUT_KEYWORDS = _key("SMSTRACK_OPT_OUT_KEYWORDS", [])

    #: Reply words that opt a number back in, besides START, YES and UNSTOP.
    OPT_IN_KEYWORDS = _key("SMSTRACK_OPT_IN_KEYWORDS", [])

    #: Refuse to send a campaign whose message (or a variant's) has no opt-out
    #: instruction such as "Reply STOP to opt out". Off: a warning only.
    REQUIRE_OPT_OUT_TEXT = _key("SMSTRACK_REQUIRE_OPT_OUT_TEXT", False)

    #: Refuse to prepare or send to recipients imported without a consent
    #: record (the ``consent_source`` and ``consent_at`` columns).
    REQUIRE_CONSENT = _key("SMSTRACK_REQUIRE_CONSENT", False)

    #: Raw clicks and conversions older than this many days are deleted by
    #: ``flask smstrack purge`` once they are counted in the rollups; reports
    #: stay the same. ``None`` keeps them.
    RETENTION_DAYS = _key("SMSTRACK_RETENTION_DAYS", None)

    #: Days after a campaign's last message after which its recipients'
    #: numbers are replaced by a keyed hash and their last two digits.
    #: ``None`` keeps them.
    FORGET_PHONES_AFTER_DAYS = _key("SMSTRACK_FORGET_PHONES_AFTER_DAYS", None)

    #: Store the visitor's address (shortened to /24 or /48) with each click.
    #: ``False`` stores none.
    STORE_IP = _key("SMSTRACK_STORE_IP", True)

    # -- several nodes ---------------------------------------------------------

    #: A Redis server shared by every node, e.g. ``redis://127.0.0.1:6379/0``:
    #: the shared link cache and the broadcast of link edits, and the queue of
    #: background jobs (RQ: sending, link checks, rollups, spool replay).
    #: ``None`` runs jobs inline and keeps each process's link cache alone.
    REDIS_URL = _key("SMSTRACK_REDIS_URL", None)

    #: Prefix of every Redis key and channel this app uses, apart from other
    #: apps sharing the same server.
    REDIS_PREFIX = _key("SMSTRACK_REDIS_PREFIX", "smstrack")

    #: Seconds a link stays in the shared link cache in Redis after it was
    #: last written (edits write it again at once). It is what a node serves
    #: while the database is down.
    SHARED_LINK_TTL = _key("SMSTRACK_SHARED_LINK_TTL", 7 * 86400)

    #: Seconds between the periodic jobs (spool replay, rollup catch-up,
    #: PostgreSQL partitions ahead): ``flask smstrack worker`` enqueues them
    #: (and looks for the jobs of dead workers as often); without Redis one
    #: web process of each machine runs them on a thread. ``0``: none.
    JOB_INTERVAL = _key("SMSTRACK_JOB_INTERVAL", 60)

    # -- outbound webhooks (:mod:`flask_smstrack.integrations`) ----------------
    #: Seconds one delivery attempt (connect and answer) may take.
    WEBHOOK_TIMEOUT = _key("SMSTRACK_WEBHOOK_TIMEOUT", 10)

    #: Seconds before the first retry; later ones wait 60, 360, 1440, 3600
    #: and 7200 times as long (5 s: 5 min, 30 min, 2 h, 5 h, 10 h).
    WEBHOOK_RETRY_BASE = _key("SMSTRACK_WEBHOOK_RETRY_BASE", 5)

    #: Retries after a delivery's first attempt (at most 6, the steps above).
    WEBHOOK_RETRIES = _key("SMSTRACK_WEBHOOK_RETRIES", 6)

    #: Deliveries in a row that fail every retry before an endpoint is disabled.
    WEBHOOK_DISABLE_AFTER = _key("SMSTRACK_WEBHOOK_DISABLE_AFTER", 3)

    #: Accept ``http://`` endpoints on any host (``localhost`` and
    #: ``127.0.0.1`` always are).
    WEBHOOK_ALLOW_HTTP = _key("SMSTRACK_WEBHOOK_ALLOW_HTTP", False)

    #: Google Analytics 4's Measurement Protocol endpoint.
    GA4_ENDPOINT = _key("SMSTRACK_GA4_ENDPOINT", "https://www.google-analytics.com/mp/collect")

    # -- rate limits (:mod:`flask_smstrack.web.limits`) ------------------------
    # Rates are written as Flask-Limiter reads them: ``"300 per minute"``,
    # ``"10/second"``, several joined by ``;``.

    #: Rate limits on the collector, the API and the login, and the flood
    #: marking of the tracked redirect. ``False`` turns them all off.
    RATELIMIT_ENABLED = _key("SMSTRACK_RATELIMIT_ENABLED", True)

    #: Where the rate counters live: ``redis://127.0.0.1:6379/0`` is shared
    #: by every process and node. ``None`` uses ``SMSTRACK_REDIS_URL`` when
    #: it is set, else keeps them in each process's memory, so each gunicorn
    #: worker counts on its own.
    RATELIMIT_STORAGE_URI = _key("SMSTRACK_RATELIMIT_STORAGE_URI", None)

    #: Prefix of the counters' names in the storage, apart from a host app's
    #: own Flask-Limiter and from other apps sharing the same Redis.
    RATELIMIT_KEY_PREFIX = _key("SMSTRACK_RATELIMIT_KEY_PREFIX", "smstrack")

    #: Collector posts from one client address. Hundreds of phones can sit
    #: behind one mobile carrier's address, each sending a landing beacon and
    #: its conversions.
    RATELIMIT_COLLECT = _key("SMSTRACK_RATELIMIT_COLLECT", "300 per minute")

    #: Collector posts naming one click id (one visitor).
    RATELIMIT_COLLECT_CLICK = _key("SMSTRACK_RATELIMIT_COLLECT_CLICK", "30 per minute")

    #: Collector posts naming a click id that does not exist, from one client
    #: address: real beacons name real clicks.
    RATELIMIT_COLLECT_UNKNOWN = _key("SMSTRACK_RATELIMIT_COLLECT_UNKNOWN", "10 per minute")

    #: API requests per API key; per user for calls made with a dashboard
    #: session, per client address for calls with neither.
    RATELIMIT_API = _key("SMSTRACK_RATELIMIT_API", "600 per minute")

    #: Clicks on tracked links from one client address beyond which each
    #: click is still redirected, but recorded as a ``bot`` (reason
    #: ``flood``) and left out of CTR.
    RATELIMIT_REDIRECT = _key("SMSTRACK_RATELIMIT_REDIRECT", "300 per minute")

    #: Failed logins to one account: after half of them each new try waits
    #: (see ``SMSTRACK_RATELIMIT_LOGIN_DELAY``); after all of them the
    #: account is refused for the period (15 minutes here).
    RATELIMIT_LOGIN_ACCOUNT = _key("SMSTRACK_RATELIMIT_LOGIN_ACCOUNT", "10 per 15 minutes")

    #: Failed logins from one client address, to any accounts: slowed and
    #: then refused as for one account.
    RATELIMIT_LOGIN_ADDRESS = _key("SMSTRACK_RATELIMIT_LOGIN_ADDRESS", "50 per 15 minutes")

    #: Seconds a login waits after the first slowed failure; the wait
    #: doubles with each further failure.
    RATELIMIT_LOGIN_DELAY = _key("SMSTRACK_RATELIMIT_LOGIN_DELAY", 1)

    # -- read by the standalone app (``wsgi.py``) from the environment -------

    #: How many proxies stand in front of the standalone app (``ProxyFix``):
    #: 0 for none.
    PROXY_HOPS = _env_key("SMSTRACK_PROXY_HOPS", 0)

    #: The standalone app's instance folder (SQLite database, secret key,
    #: spool). ``None``: ``instance/`` beside ``wsgi.py``.
    INSTANCE_PATH = _env_key("SMSTRACK_INSTANCE_PATH", None)


class SmsTrackConfigWarning(UserWarning):
    """An ``SMSTRACK_*`` setting that flask-smstrack does not read: most
    likely a typo, which would otherwise be ignored without a word."""


def defaults() -> dict[str, Any]:
    """Every key read from ``app.config``, with its default."""
    return dict(DEFAULTS)


def unknown_keys(names: Mapping[str, Any] | list[str], *, environment: bool = False) -> list[str]:
    """A sentence for each ``SMSTRACK_*`` name in ``names`` that is not a key.

    Each names the nearest key (a typo), or says where an environment-only
    key is read. ``environment`` says that ``names`` are environment
    variables, which may also be the standalone app's own keys.
    """
    known = set(DEFAULTS) | (set(ENVIRONMENT_ONLY) if environment else set())
    where = "environment variable" if environment else "app.config key"
    problems = []
    for name in sorted(n for n in names if isinstance(n, str) and n.startswith(PREFIX)):
        if name in known:
            continue
        if name in ENVIRONMENT_ONLY:
            problems.append(
                f"{where} {name} is not read from app.config: the standalone app reads it from"
                " the environment only."
            )
            continue
        close = difflib.get_close_matches(name, sorted(DEFAULTS | ENVIRONMENT_ONLY), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]}?" if close else " See the config table in the README."
        problems.append(f"Unknown {where} {name}: flask-smstrack has no such setting.{hint}")
    return problems


def warn_unknown(names: Mapping[str, Any] | list[str], *, environment: bool = False) -> None:
    """Warn (:class:`SmsTrackConfigWarning`) about each name :func:`unknown_keys` finds."""
    for problem in unknown_keys(names, environment=environment):
        warnings.warn(problem, SmsTrackConfigWarning, stacklevel=3)


def keys_doc(indent: str = "") -> str:
    """The keys as a docstring paragraph: what ``init_app`` reads."""
    app_keys = ", ".join(f"``{name}``" for name in DEFAULTS)
    env_keys = ", ".join(f"``{name}``" for name in ENVIRONMENT_ONLY)
    text = (
        f"Reads these keys of ``app.config``: {app_keys}. "
        f"The standalone app also reads {env_keys} from the environment."
    )
    return "\n" + textwrap.fill(text, 72, initial_indent=indent, subsequent_indent=indent) + "\n"
