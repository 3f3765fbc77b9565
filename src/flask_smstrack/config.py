"""Every configuration key flask-smstrack reads, with its default.

Keys are applied to ``app.config`` with ``setdefault`` in
:meth:`flask_smstrack.SmsTrack.init_app`, so a host app can set any of them
before or after constructing the extension. The README's config table lists
the same keys.
"""
from __future__ import annotations

#: URL prefix of the tracked redirect: ``/s/<code>``.
SMSTRACK_LINK_PREFIX = "/s"

#: URL prefix of the snippet, collector, API and dashboard.
SMSTRACK_URL_PREFIX = "/smstrack"

#: Public base URL used to build short links (``https://go.example.com``).
#: ``None`` uses the URL of the current request.
SMSTRACK_BASE_URL: str | None = None

#: Query parameter that carries the click id to the landing page.
SMSTRACK_CLICK_PARAM = "smsclid"

#: Name of the attribution cookie set by the redirect (HttpOnly).
SMSTRACK_COOKIE_NAME = "smsclid"

#: Name of the first-party cookie the snippet keeps on the landing domain.
SMSTRACK_SNIPPET_COOKIE_NAME = "_smsclid"

#: Domain of the attribution cookie, e.g. ``.example.com``. ``None`` means
#: the host that served the redirect.
SMSTRACK_COOKIE_DOMAIN: str | None = None

#: Lifetime of the attribution cookie, in days.
SMSTRACK_COOKIE_DAYS = 30

#: ``True``, ``False`` or ``None`` (secure when the request came over https).
SMSTRACK_COOKIE_SECURE: bool | None = None

#: Conversions count for a click made at most this many days before.
SMSTRACK_ATTRIBUTION_WINDOW_DAYS = 30

#: ``"last"`` (the click named by the conversion) or ``"first"`` (the
#: visitor's first click within the window).
SMSTRACK_ATTRIBUTION_MODEL = "last"

#: Where unknown codes are redirected. ``None`` answers with a 404 page.
SMSTRACK_FALLBACK_URL: str | None = None

#: Seconds a link looked up by the redirect stays in the in-process cache.
#: Short, so that several nodes stay consistent after an edit.
SMSTRACK_LINK_CACHE_TTL = 30

#: How many links the in-process cache holds at most.
SMSTRACK_LINK_CACHE_SIZE = 10_000

#: Length of generated short codes (base62, at least 7).
SMSTRACK_CODE_LENGTH = 8

#: Request header holding the visitor's country, set by a trusted proxy
#: (``"CF-IPCountry"`` behind Cloudflare). ``None`` never reads a header.
SMSTRACK_COUNTRY_HEADER: str | None = None

#: Path to a MaxMind-format ``.mmdb`` country or city database. ``None`` uses
#: the offline table shipped with the ``iptocc`` package.
SMSTRACK_GEOIP_DB: str | None = None

#: Origins allowed to post to the collector: ``"*"`` or a list such as
#: ``["https://shop.example.com"]``.
SMSTRACK_ALLOWED_ORIGINS: str | list[str] = "*"

#: Largest collector or API body accepted, in bytes.
SMSTRACK_MAX_PAYLOAD_BYTES = 4096

#: Largest revenue accepted for one conversion.
SMSTRACK_MAX_REVENUE = "1000000000"

#: Where clicks that could not be written are kept until
#: ``flask smstrack replay-spool`` writes them. ``None`` uses
#: ``<instance folder>/smstrack-spool``.
SMSTRACK_SPOOL_DIR: str | None = None

#: Put SQLite databases in WAL mode with ``synchronous=NORMAL`` on connect.
SMSTRACK_SQLITE_WAL = True

#: Region of phone numbers written without a country code, such as
#: ``(415) 555-0100``: an ISO 3166 code like ``US`` or ``GB``.
SMSTRACK_DEFAULT_REGION = "US"

#: Largest recipient file accepted by the API, in bytes.
SMSTRACK_MAX_IMPORT_BYTES = 20 * 1024 * 1024

#: Timezone of the dashboard's hours and days (an IANA name such as
#: ``America/New_York``); each view can pick another.
SMSTRACK_TIMEZONE = "UTC"

#: Wait for PostgreSQL to flush each click to disk before the redirect.
#: ``False`` sets ``synchronous_commit = off`` on the connections that write
#: clicks only: each click is still committed before its ``302``, but a crash
#: of the database server may lose the last fraction of a second of clicks.
#: Several times the click throughput on disks with slow fsync.
SMSTRACK_CLICK_SYNC_COMMIT = True

#: Register the dashboard login view and user loader when the host app has
#: no Flask-Login ``LoginManager`` of its own.
SMSTRACK_BUILTIN_USERS = True

#: How the built-in users' passwords are hashed when they are set: a method
#: of :func:`werkzeug.security.generate_password_hash`, such as ``"scrypt"``
#: or ``"pbkdf2:sha256:1000000"``. Stored hashes name their own method, so
#: they keep working after a change. The test suite uses a cheap one.
SMSTRACK_PASSWORD_HASH_METHOD = "scrypt"

#: Seconds the link checker (``flask smstrack check-links``, "Test links" on
#: the dashboard) waits for each destination: connecting, redirects and
#: loading the page together.
SMSTRACK_LINK_CHECK_TIMEOUT = 10

#: Let the link checker fetch pages on this server's own network (loopback,
#: private and link-local addresses). Off, so that a dashboard user cannot
#: use it to look inside the network; turn it on to check a staging site.
SMSTRACK_LINK_CHECK_PRIVATE_ADDRESSES = False

#: Twilio Account SID for ``flask smstrack send`` and the webhooks. ``None``
#: reads the ``TWILIO_ACCOUNT_SID`` environment variable.
SMSTRACK_TWILIO_ACCOUNT_SID: str | None = None

#: Twilio Auth Token: authenticates sends and verifies the signature of
#: Twilio's webhooks. ``None`` reads the ``TWILIO_AUTH_TOKEN`` environment
#: variable.
SMSTRACK_TWILIO_AUTH_TOKEN: str | None = None

#: Messaging Service SID (``MG...``) to send from. Either this or
#: ``SMSTRACK_TWILIO_FROM`` is needed; the service wins when both are set.
SMSTRACK_TWILIO_MESSAGING_SERVICE_SID: str | None = None

#: Twilio phone number (E.164), short code or alphanumeric sender ID to send
#: from, when no Messaging Service is set.
SMSTRACK_TWILIO_FROM: str | None = None

#: Base URL of a Twilio-compatible API or a proxy in front of Twilio, such as
#: ``http://127.0.0.1:8080``: requests for ``https://api.twilio.com`` go there
#: instead. ``None`` talks to Twilio itself.
SMSTRACK_TWILIO_API_URL: str | None = None

#: Messages per second sent by ``flask smstrack send``. 1 is the limit of a
#: Twilio long code; a Messaging Service with several numbers, a toll-free
#: number or a short code allows more.
SMSTRACK_SEND_RATE = 1.0


def defaults() -> dict[str, object]:
    """Return every ``SMSTRACK_*`` key defined above with its default."""
    return {k: v for k, v in globals().items() if k.startswith("SMSTRACK_")}
