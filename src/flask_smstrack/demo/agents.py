"""The demo's visitors: user agents of phones, tablets, desktops, link
previews and bots with their weights, the recipients' countries and
carriers' networks, and the daily rhythm of clicks."""
from __future__ import annotations

#: Human visitors: (weight, user agent, referrer host). Referrers are empty
#: for SMS, except in the in-app browsers of apps where the link was shared.
HUMAN_AGENTS: tuple[tuple[float, str, str | None], ...] = (
    # iPhone: about 48%.
    (20, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", None),
    (11, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", None),
    (6, "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", None),
    (4, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", None),
    (3, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.153 Mobile/15E148 Safari/604.1", None),
    (2, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 337.0.3.23.54 (iPhone15,2; iOS 17_5_1; en_US; en; scale=3.00; 1179x2556; 614078409)", "l.instagram.com"),
    (1, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.44.108;FBBV/615113476;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/618181722]", "m.facebook.com"),
    (1, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/323.0.647062479 Mobile/15E148 Safari/604.1", None),
    # Android phones: about 27%.
    (11, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", None),
    (5, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36", None),
    (3, "Mozilla/5.0 (Linux; Android 13; SM-A536U) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36", None),
    (6, "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", None),
    (1, "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0", None),
    (1, "Mozilla/5.0 (Linux; Android 14; SM-G991U Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.134 Mobile Safari/537.36 Instagram 337.0.0.35.102 Android (34/14; 420dpi; 1080x2181; samsung; SM-G991U; o1q; qcom; en_US; 614212155)", "l.instagram.com"),
    # Tablets: about 5%.
    (3.5, "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", None),
    (1.5, "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", None),
    # Desktops (Messages on a Mac, Google Messages for web): about 20%.
    (7, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", None),
    (5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", None),
    (3.5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", None),
    (3, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", None),
    (1.5, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", None),
)


#: Link-preview fetchers: (weight, user agent). iMessage fetches the preview
#: from the recipient's phone as the message arrives.
PREVIEW_AGENTS: tuple[tuple[float, str], ...] = (
    (85, "facebookexternalhit/1.1 Facebot Twitterbot/1.0"),
    (8, "WhatsApp/2.24.13.78 A"),
    (5, "WhatsApp/2.24.12.78 i"),
    (2, "TelegramBot (like TwitterBot)"),
)


#: Bots: (weight, user agent, IPv4 /16 or /24 it comes from, its country).
#: Carriers' and mail providers' link scanners, scripts, and crawlers.
BOT_AGENTS: tuple[tuple[float, str, str, str], ...] = (
    (25, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.6478.126 Safari/537.36", "3.236", "US"),
    (15, "python-requests/2.32.3", "34.105", "US"),
    (15, "Go-http-client/1.1", "88.99", "DE"),
    (15, "", "54.36", "FR"),
    (10, "curl/8.7.1", "3.236", "US"),
    (10, "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "66.249.66", "US"),
    (5, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "40.77.167", "US"),
    (5, "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "54.36.148", "FR"),
)


#: Recipients: (country, share, hours ahead of the sender's clock, network
#: prefixes of its carriers: IPv4 /16s, IPv6 /32s). Fixed differences, so the
#: same seed gives the same data in any week of the year.
COUNTRIES: tuple[tuple[str, float, int, tuple[str, ...]], ...] = (
    ("US", 0.38, 0, ("172.56", "174.205", "166.198", "73.92", "107.77", "99.203", "2607:fb90")),
    ("US", 0.14, -1, ("172.56", "174.205", "166.198", "107.77", "2607:fb90")),
    ("US", 0.12, -3, ("172.56", "174.205", "73.92", "99.203", "2607:fb90")),
    ("CA", 0.06, 0, ("99.224", "184.144", "142.198")),
    ("CA", 0.03, -3, ("70.66", "184.144")),
    ("GB", 0.08, 5, ("31.94", "86.140", "92.40", "2a01:4c8")),
    ("AU", 0.05, 15, ("1.144", "101.115", "49.181", "120.18")),
    ("DE", 0.04, 6, ("80.187", "84.140", "91.64", "2a01:598")),
    ("FR", 0.03, 6, ("90.40", "92.184", "37.171", "176.160")),
    ("IE", 0.02, 5, ("86.40", "89.101", "109.255")),
    ("NL", 0.02, 6, ("31.20", "77.160", "145.53")),
    ("NZ", 0.015, 17, ("115.189", "118.148")),
    ("MX", 0.015, -1, ("189.203", "201.141")),
)


#: Relative click rate by local hour, 0:00 to 23:00.
DAILY_RHYTHM = (
    0.25, 0.12, 0.07, 0.05, 0.05, 0.08, 0.20, 0.45, 0.70, 0.85, 0.95, 1.00,
    1.05, 1.00, 0.95, 0.95, 0.95, 1.00, 1.10, 1.20, 1.20, 1.05, 0.80, 0.50,
)
