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
#: Android phones: their browsers say ``Mobile`` (or are Opera Mini), some
#: without the text ``Mobile Safari`` (DuckDuckGo, Opera Mini, Firefox).
ANDROID_PHONES = [
    # DuckDuckGo
    "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.5845.163 Mobile DuckDuckGo/5 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.0.0 Mobile DuckDuckGo/5 Safari/537.36",
    # Opera Mini (its server-side rendering mode)
    "Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16",
    "Opera/9.80 (Android; Opera Mini/7.6.40234/191.227; U; en) Presto/2.12.423 Version/12.16",
    # Firefox, Firefox Focus and Klar (Gecko builds)
    "Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0",
    "Mozilla/5.0 (Android 13; Mobile; rv:109.0) Gecko/118.0 Firefox/118.0",
    # Firefox Focus and Klar (WebView builds)
    "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Focus/118.1.0 Chrome/118.0.5993.80 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 8.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Klar/1.0 Chrome/58.0.3029.83 Mobile Safari/537.36",
    # Opera, UC Browser, Edge, Samsung Internet, in-app browsers
    "Mozilla/5.0 (Linux; U; Android 12; SM-A125F Build/SP1A.210812.016; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/110.0.5481.153 Mobile Safari/537.36 OPR/74.1.2254.67470",
    "Mozilla/5.0 (Linux; U; Android 10; en-US; RMX1971 Build/QKQ1.190918.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36 EdgA/126.0.2592.80",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/467.0.0.50.109;]",
]
#: Android tablets: no ``Mobile`` token (Firefox says ``Tablet``).
ANDROID_TABLETS = [
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/22.0 Chrome/111.0.5563.116 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 11; Lenovo TB-J606F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel Tablet) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/126.2.1 like Chrome/126.0.6478.71 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-X700 Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.5845.163 DuckDuckGo/5 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; SM-T505 Build/SP1A.210812.016; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Safari/537.36",
    "Mozilla/5.0 (Android 13; Tablet; rv:126.0) Gecko/126.0 Firefox/126.0",
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


@pytest.mark.parametrize("ua", ANDROID_PHONES)
def test_android_phones_are_mobile(ua):
    agent = classify_agent(ua)
    assert (agent.kind, agent.device_type, agent.os) == ("human", "mobile", "Android")


@pytest.mark.parametrize("ua", ANDROID_TABLETS)
def test_android_tablets_stay_tablets(ua):
    agent = classify_agent(ua)
    assert (agent.kind, agent.device_type, agent.os) == ("human", "tablet", "Android")


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
