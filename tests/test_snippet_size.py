"""The landing-page snippet, as ``GET /smstrack/t.js`` serves it: tiny,
self-contained, valid JavaScript that does its job on a bare page."""

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "static" / "smstrack" / "t.js"
BUDGET = 1200  # bytes, gzip -9 of what is served

# Runs the snippet in a bare Node context standing in for a landing page, and
# prints the globals it added, the beacons it sent, the cookie it wrote and
# the address it left in the address bar (null when it did not change it).
# argv: the script's path, then the page as JSON: the script tag's data-*
# attributes, the URL's query string and hash, the page's cookies, the
# protocol, the browser's privacy signals, the calls queued before the script
# loaded and the calls made after.
NODE_PAGE = r"""
const vm = require('vm'), fs = require('fs');
const given = JSON.parse(process.argv[2]);
const beacons = [];
const page = {
  document: {
    cookie: given.cookie,
    currentScript: {
      src: 'https://go.example.com/smstrack/t.js?v=1',
      getAttribute: (name) => given.attributes[name] ?? null,
    },
    querySelectorAll: () => [],
  },
  location: {pathname: '/spring', search: given.search, hash: given.hash, protocol: given.protocol},
  history: {state: {page: 1}, replaceState: (state, title, url) => { address = [state, url]; }},
  navigator: {sendBeacon: (url, body) => (beacons.push([url, JSON.parse(body)]), true), ...given.navigator},
  URL,
  URLSearchParams,
};
let address = null;
page.window = page;
if (given.queued.length) {
  page.smstrack = function () {};
  page.smstrack.q = given.queued;
}
const before = new Set(Object.keys(page));
vm.createContext(page);
vm.runInContext(fs.readFileSync(process.argv[1], 'utf8'), page);
for (const call of given.calls) page.smstrack(...call);
const added = Object.keys(page).filter((k) => !before.has(k));
console.log(JSON.stringify({added, beacons, cookie: page.document.cookie, address}));
"""
COLLECT = "https://go.example.com/smstrack/collect"
NEEDS_NODE = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture
def served(client) -> bytes:
    response = client.get("/smstrack/t.js")
    assert response.status_code == 200
    return response.data


@pytest.fixture
def served_file(served, tmp_path) -> Path:
    path = tmp_path / "t.js"
    path.write_bytes(served)
    return path


def run_page(script: Path, *, attributes=None, search="", hash="", cookie="", protocol="https:", navigator=None,
             queued=(), calls=()) -> dict:
    page = {"attributes": attributes or {}, "search": search, "hash": hash, "cookie": cookie, "protocol": protocol,
            "navigator": navigator or {}, "queued": list(queued), "calls": list(calls)}
    out = subprocess.run(
        ["node", "-e", NODE_PAGE, str(script), json.dumps(page)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def test_snippet_gzipped_size_within_budget(served):
    size = len(gzip.compress(served, compresslevel=9))
    assert size <= BUDGET, f"t.js is served as {size} bytes gzipped, budget is {BUDGET}"


def test_snippet_is_served_minified(served):
    from flask_smstrack.web.snippet import minify

    source = SOURCE.read_text(encoding="utf-8")
    assert served == minify(source)
    assert len(served) < len(source.encode()) * 0.6
    # The readable source's comments stay home; the short header goes along.
    assert served.startswith(b"/*! flask-smstrack */(function")
    assert served.count(b"/*") == 1


def test_snippet_shape(served):
    code = re.sub(r"^/\*.*?\*/\s*", "", served.decode(), flags=re.S)
    # One IIFE: nothing declared at the top level.
    assert code.startswith("(function")
    assert code.rstrip().endswith(");")
    # The only global it writes is `smstrack`.
    written = re.findall(r"\b(?:w|window)\.(\w+)\s*=(?!=)", code)
    assert written == ["smstrack"]
    assert "sendBeacon" in code
    assert "keepalive" in code


@NEEDS_NODE
def test_snippet_is_valid_javascript(served_file):
    subprocess.run(["node", "--check", str(served_file)], check=True)


@NEEDS_NODE
def test_snippet_on_a_bare_page(served_file):
    result = run_page(
        served_file, search="?smsclid=abc123",
        calls=[["conversion", {"revenue": "9.50", "currency": "EUR"}], ["conversion", None], [42]],
    )
    assert result["added"] == ["smstrack"]
    assert result["beacons"] == [
        [COLLECT, {"type": "landing", "click_id": "abc123"}],
        [COLLECT, {"type": "conversion", "click_id": "abc123", "revenue": "9.50", "currency": "EUR"}],
    ]
    assert result["cookie"] == "_smsclid=abc123;path=/;max-age=2592000;SameSite=Lax;Secure"


@NEEDS_NODE
def test_snippet_options_from_data_attributes(served_file):
    attributes = {"data-param": "ref", "data-cookie": "sms_ref", "data-cookie-days": "7",
                  "data-cookie-domain": ".example.com", "data-api": "https://t.example.net/in"}
    result = run_page(served_file, attributes=attributes, search="?smsclid=not-this&ref=xyz-789", protocol="http:")
    assert result["beacons"] == [["https://t.example.net/in", {"type": "landing", "click_id": "xyz-789"}]]
    assert result["cookie"] == "sms_ref=xyz-789;path=/;max-age=604800;SameSite=Lax;domain=.example.com"


@NEEDS_NODE
def test_snippet_forwards_the_conversion_token(served_file):
    order = {"event": "purchase", "revenue": "49.90", "currency": "USD", "order_id": "A-1001", "token": "oMQ.t0k.sig"}
    result = run_page(served_file, cookie="_smsclid=from-cookie", queued=[["conversion", order]])
    assert result["beacons"] == [[COLLECT, {"type": "conversion", "click_id": "from-cookie", **order}]]


@NEEDS_NODE
def test_snippet_replays_the_queue_with_the_click_id_from_its_cookie(served_file):
    # The thank-you page: no click id in its URL, the purchase queued before the script loaded.
    order = {"event": "purchase", "revenue": "49.90", "currency": "USD", "order_id": "A-1001"}
    result = run_page(served_file, cookie="theme=dark; _smsclid=from-cookie", queued=[["conversion", order]])
    assert result["added"] == []  # the page's stub is replaced, not added
    assert result["beacons"] == [[COLLECT, {"type": "conversion", "click_id": "from-cookie", **order}]]
    assert result["cookie"] == "theme=dark; _smsclid=from-cookie"


@NEEDS_NODE
@pytest.mark.parametrize("search,cookie", [("?smsclid=no%20spaces", ""), ("", "_smsclid=" + "x" * 65), ("", "")])
def test_snippet_without_a_valid_click_id_sends_none(served_file, search, cookie):
    result = run_page(served_file, search=search, cookie=cookie, calls=[["conversion", {"event": "signup"}]])
    assert result["beacons"] == [[COLLECT, {"type": "conversion", "event": "signup"}]]
    assert result["cookie"] == cookie


LANDING = [COLLECT, {"type": "landing", "click_id": "abc123"}]
SIGNUP = [COLLECT, {"type": "conversion", "click_id": "abc123", "event": "signup"}]
COOKIE = "_smsclid=abc123;path=/;max-age=2592000;SameSite=Lax;Secure"
REMOVED = "_smsclid=;path=/;max-age=0;SameSite=Lax;Secure"


@NEEDS_NODE
def test_snippet_waits_for_consent_when_required(served_file):
    page = {"attributes": {"data-consent": "required"}, "search": "?smsclid=abc123"}
    # Before consent: nothing stored, nothing sent, the conversion held in memory.
    waiting = run_page(served_file, **page, calls=[["conversion", {"event": "signup"}]])
    assert (waiting["beacons"], waiting["cookie"]) == ([], "")
    # Consent: the cookie, then the landing ping and the conversion made before it.
    given = run_page(served_file, **page, queued=[["conversion", {"event": "signup"}]], calls=[["consent", True]])
    assert given["beacons"] == [LANDING, SIGNUP]
    assert given["cookie"] == COOKIE
    # Given twice: the landing ping goes out once; later conversions go straight out.
    twice = run_page(served_file, **page, calls=[["consent", True], ["consent", True], ["conversion", {"event": "signup"}]])
    assert twice["beacons"] == [LANDING, SIGNUP]


@NEEDS_NODE
def test_snippet_consent_refused_or_withdrawn(served_file):
    page = {"attributes": {"data-consent": "required"}, "search": "?smsclid=abc123"}
    refused = run_page(served_file, **page, cookie="_smsclid=old",
                       calls=[["conversion", {"event": "signup"}], ["consent", False], ["conversion", {}]])
    assert (refused["beacons"], refused["cookie"]) == ([], REMOVED)
    # Refused, then given: what was made before the refusal stays forgotten.
    changed = run_page(served_file, **page, calls=[["conversion", {"event": "a"}], ["consent", False], ["consent", True]])
    assert (changed["beacons"], changed["cookie"]) == ([], COOKIE)
    # Without data-consent="required" the page can still withdraw.
    withdrawn = run_page(served_file, search="?smsclid=abc123",
                         calls=[["consent", False], ["conversion", {"event": "signup"}]])
    assert (withdrawn["beacons"], withdrawn["cookie"]) == ([LANDING], REMOVED)


@NEEDS_NODE
@pytest.mark.parametrize(
    "attributes,navigator",
    [
        ({}, {"globalPrivacyControl": True}),
        ({"data-consent": "required"}, {"globalPrivacyControl": True}),
        ({"data-respect-dnt": ""}, {"doNotTrack": "1"}),
        ({"data-respect-dnt": "", "data-consent": "required"}, {"doNotTrack": "1"}),
    ],
)
def test_snippet_honours_the_browser_signal(served_file, attributes, navigator):
    result = run_page(
        served_file, attributes=attributes, navigator=navigator, search="?smsclid=abc123&lang=de", cookie="_smsclid=old",
        queued=[["conversion", {"event": "signup"}]], calls=[["consent", True], ["conversion", {"event": "signup"}]],
    )
    # Nothing sent, the cookie from an earlier visit removed, nothing written; the address cleaned all the same.
    assert result["beacons"] == []
    assert result["cookie"] == REMOVED
    assert result["address"] == [{"page": 1}, "/spring?lang=de"]


@NEEDS_NODE
@pytest.mark.parametrize("navigator", [{"doNotTrack": "1"}, {"globalPrivacyControl": False}, {"doNotTrack": "0"}])
def test_snippet_tracks_without_a_signal_it_honours(served_file, navigator):
    # Do Not Track counts only with data-respect-dnt.
    result = run_page(served_file, navigator=navigator, search="?smsclid=abc123")
    assert (result["beacons"], result["cookie"]) == ([LANDING], COOKIE)


@NEEDS_NODE
@pytest.mark.parametrize(
    "search,hash,attributes,address",
    [
        ("?smsclid=abc123", "", {}, "/spring"),
        ("?utm_source=sms&smsclid=abc123&q=a%20b+c&flag", "#buy", {}, "/spring?utm_source=sms&q=a%20b+c&flag#buy"),
        ("?smsclid=abc123&smsclid=again&x=", "", {}, "/spring?x="),
        ("?smsclid=not%20valid&x=1", "", {}, "/spring?x=1"),
        ("?ref=abc123&smsclid=other", "", {"data-param": "ref"}, "/spring?smsclid=other"),
        ("?smsclid=abc123&x=1", "#top", {"data-keep-param": ""}, None),
        ("?x=1", "#smsclid=abc123", {}, None),
        ("", "", {}, None),
    ],
)
def test_snippet_takes_the_click_id_out_of_the_address(served_file, search, hash, attributes, address):
    result = run_page(served_file, search=search, hash=hash, attributes=attributes)
    # The history entry's state stays the page's own.
    assert result["address"] == (address and [{"page": 1}, address])
