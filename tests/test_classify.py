import pytest

from flask_smstrack.tracking.classify import CountryLookup, anonymize_ip, classify_agent

PREVIEWS = [
    "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "WhatsApp/2.23.20.0 A",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "TelegramBot (like TwitterBot)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "Mozilla/5.0 (Linux; Android 11; Pixel 2; DuplexWeb-Google/1.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.193 Mobile Safari/537.36 Google-PageRenderer Google (+https://developers.google.com/+/web/snippet/)",
]
BOTS = [
    "",
    "   ",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.31.0",
]
HUMANS = [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "mobile", "iOS"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "mobile", "Android"),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", "tablet", "iOS"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", "desktop", "Mac OS X"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 327.0.0.30.120 (iPhone15,2; iOS 17_4; en_US; en; scale=3.00; 1179x2556; 591528442)", "mobile", "iOS"),
]


@pytest.mark.parametrize("ua", PREVIEWS)
def test_link_previews(ua):
    assert classify_agent(ua).kind == "preview"


@pytest.mark.parametrize("ua", BOTS)
def test_bots(ua):
    assert classify_agent(ua).kind == "bot"


@pytest.mark.parametrize("ua,device,os", HUMANS)
def test_humans(ua, device, os):
    agent = classify_agent(ua)
    assert (agent.kind, agent.device_type, agent.os) == ("human", device, os)


@pytest.mark.parametrize(
    "ip,expected",
    [
        ("81.2.69.160", "81.2.69.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("::ffff:81.2.69.160", "81.2.69.0"),
        ("not an ip", None),
        (None, None),
    ],
)
def test_anonymize_ip(ip, expected):
    assert anonymize_ip(ip) == expected


def test_country_from_builtin_table():
    lookup = CountryLookup()
    assert lookup("81.2.69.160", {}) == "GB"
    assert lookup("127.0.0.1", {}) is None
    assert lookup("garbage", {}) is None


def test_country_header_only_when_trusted():
    headers = {"HTTP_CF_IPCOUNTRY": "de"}
    assert CountryLookup()("81.2.69.160", headers) == "GB"
    assert CountryLookup(header="CF-IPCountry")("81.2.69.160", headers) == "DE"
    # Unknown or Tor from the proxy: fall back to the address.
    assert CountryLookup(header="CF-IPCountry")("81.2.69.160", {"HTTP_CF_IPCOUNTRY": "XX"}) == "GB"


def test_country_from_mmdb(tmp_path):
    """A MaxMind-format database, written here, takes over from the built-in table."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country")
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "FR"}})
    writer.insert_network(IPSet(["2001:db8::/32"]), {"registered_country": {"iso_code": "nl"}})
    path = tmp_path / "country.mmdb"
    writer.to_db_file(str(path))
    lookup = CountryLookup(mmdb_path=str(path))
    assert lookup("81.2.69.160", {}) == "FR"
    assert lookup("2001:db8::1", {}) == "NL"
    assert lookup("8.8.8.8", {}) is None
    # A trusted header still wins over the database.
    assert CountryLookup(header="CF-IPCountry", mmdb_path=str(path))("81.2.69.160", {"HTTP_CF_IPCOUNTRY": "DE"}) == "DE"


def test_missing_mmdb_is_a_clear_error(make_app):
    with pytest.raises(RuntimeError, match="SMSTRACK_GEOIP_DB"):
        make_app(SMSTRACK_GEOIP_DB="/nonexistent/GeoLite2-Country.mmdb")
