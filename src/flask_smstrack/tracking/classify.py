"""What a request to a tracked link is: human, link preview or bot; which
device; which country.

Parsing a user agent costs more than a whole bare Flask request, so every
classification is cached per user-agent string.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from functools import lru_cache

import crawleruseragents
import iptocc
import user_agents
from user_agents.parsers import TABLET_DEVICE_FAMILIES

logger = logging.getLogger("flask_smstrack")

#: Substrings of the user agents that fetch a link to draw its preview in a
#: chat. Messaging apps do this as soon as a message arrives, so counting
#: them would inflate SMS clicks.
PREVIEW_AGENTS = {
    # iMessage sends "facebookexternalhit/1.1 Facebot Twitterbot/1.0".
    "facebookexternalhit": "Facebook / iMessage preview",
    "Facebot": "Facebook / iMessage preview",
    "Twitterbot": "X (Twitter) preview",
    # WhatsApp, and Signal, which sends the same string.
    "WhatsApp": "WhatsApp / Signal preview",
    "Slackbot-LinkExpanding": "Slack preview",
    "TelegramBot": "Telegram preview",
    "Discordbot": "Discord preview",
    "SkypeUriPreview": "Skype preview",
    "Applebot": "Applebot",
    "Google-PageRenderer": "Google page renderer",
}
_PREVIEW_AGENTS_LOWER = tuple((s.lower(), label) for s, label in PREVIEW_AGENTS.items())

#: On Android, browsers say ``Mobile`` on phones (``Mobile Safari``, but
#: also ``Mobile DuckDuckGo`` or Firefox's ``Mobile;``) and leave it out on
#: tablets, where Firefox says ``Tablet``. Opera Mini says neither.
_ANDROID_TABLET = re.compile(r"\bTablet\b")
_ANDROID_PHONE = re.compile(r"\bMobile\b|\bOpera Mini\b")


@dataclass(frozen=True, slots=True)
class Agent:
    """What a user-agent string says about the visitor."""

    kind: str  # human, preview or bot
    device_type: str | None  # mobile, tablet, desktop, other
    os: str | None
    browser: str | None


def _clip(value: str | None, size: int = 64) -> str | None:
    if not value or value == "Other":
        return None
    return value[:size]


@lru_cache(maxsize=16_384)
def classify_agent(ua: str) -> Agent:
    """Classify one user-agent string (cached)."""
    if not ua.strip():
        return Agent("bot", None, None, None)
    lowered = ua.lower()
    for needle, label in _PREVIEW_AGENTS_LOWER:
        if needle in lowered:
            return Agent("preview", None, None, label)
    parsed = user_agents.parse(ua)
    if parsed.is_bot or crawleruseragents.is_crawler(ua):
        return Agent("bot", None, None, _clip(parsed.browser.family))
    return Agent("human", _device_type(ua, parsed), _clip(parsed.os.family), _clip(parsed.browser.family))


def _device_type(ua: str, parsed: user_agents.parsers.UserAgent) -> str:
    # The parser calls an Android device a tablet unless it reads "Mobile
    # Safari", and Firefox on an Android tablet a phone: read the tokens.
    if parsed.os.family == "Android" and parsed.device.family not in TABLET_DEVICE_FAMILIES:
        if _ANDROID_TABLET.search(ua):
            return "tablet"
        if _ANDROID_PHONE.search(ua):
            return "mobile"
    if parsed.is_tablet:
        return "tablet"
    if parsed.is_mobile:
        return "mobile"
    if parsed.is_pc:
        return "desktop"
    return "other"


def anonymize_ip(ip: str | None) -> str | None:
    """Keep the network, drop the host: IPv4 to /24, IPv6 to /48."""
    if not ip:
        return None
    try:
        socket.inet_pton(socket.AF_INET, ip)
    except OSError:
        pass
    else:  # the usual case, answered without building objects
        return ip[: ip.rindex(".")] + ".0"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


class CountryLookup:
    """Country of a visitor: a trusted proxy header, a MaxMind database, or
    the offline table of the ``iptocc`` package, in that order."""

    def __init__(self, header: str | None = None, mmdb_path: str | None = None) -> None:
        #: The header as a WSGI environ key: ``CF-IPCountry`` -> ``HTTP_CF_IPCOUNTRY``.
        self.environ_key = "HTTP_" + header.upper().replace("-", "_") if header else None
        self._reader = None
        if mmdb_path:
            import maxminddb

            self._reader = maxminddb.open_database(mmdb_path)

    def __call__(self, ip: str | None, environ) -> str | None:
        """The country of ``ip``; ``environ`` is the request's WSGI environ."""
        if self.environ_key:
            value = (environ.get(self.environ_key) or "").strip().upper()
            # Cloudflare sends XX for unknown and T1 for Tor.
            if len(value) == 2 and value.isalpha() and value != "XX":
                return value
        if not ip:
            return None
        if self._reader is not None:
            return self._from_mmdb(ip)
        try:
            return iptocc.country_code(ip)
        except ValueError:
            return None

    def _from_mmdb(self, ip: str) -> str | None:
        try:
            record = self._reader.get(ip)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        country = record.get("country") or record.get("registered_country") or {}
        code = country.get("iso_code") if isinstance(country, dict) else None
        return code.upper() if code else None
