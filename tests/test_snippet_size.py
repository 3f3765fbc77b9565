"""The landing-page snippet stays tiny, self-contained and valid JavaScript."""

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SNIPPET = Path(__file__).resolve().parents[1] / "static" / "smstrack" / "t.js"
BUDGET = 1200  # bytes, gzip -9

# Runs the snippet in a bare Node context standing in for a landing page, and
# prints the globals it added and the beacons it sent.
NODE_PAGE = r"""
const vm = require('vm'), fs = require('fs');
const beacons = [];
const page = {
  document: {
    cookie: '',
    currentScript: {src: 'https://go.example.com/smstrack/t.js?v=1', getAttribute: () => null},
    querySelectorAll: () => [],
  },
  location: {search: '?smsclid=abc123', protocol: 'https:'},
  navigator: {sendBeacon: (url, body) => (beacons.push([url, JSON.parse(body)]), true)},
  URLSearchParams,
};
page.window = page;
const before = new Set(Object.keys(page));
vm.createContext(page);
vm.runInContext(fs.readFileSync(process.argv[1], 'utf8'), page);
page.smstrack('conversion', {revenue: '9.50', currency: 'EUR'});
page.smstrack('conversion', null);
page.smstrack(42);
const added = Object.keys(page).filter((k) => !before.has(k));
console.log(JSON.stringify({added, beacons, cookie: page.document.cookie}));
"""


def test_snippet_gzipped_size_within_budget():
    size = len(gzip.compress(SNIPPET.read_bytes(), compresslevel=9))
    assert size <= BUDGET, f"t.js is {size} bytes gzipped, budget is {BUDGET}"


def test_snippet_shape():
    source = SNIPPET.read_text(encoding="utf-8")
    code = re.sub(r"^/\*.*?\*/\s*", "", source, flags=re.S)
    # One IIFE: nothing declared at the top level.
    assert code.startswith("(function")
    assert code.rstrip().endswith(");")
    # The only global it writes is `smstrack`.
    written = re.findall(r"\b(?:w|window)\.(\w+)\s*=(?!=)", code)
    assert written == ["smstrack"]
    assert "sendBeacon" in source
    assert "keepalive" in source


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_snippet_is_valid_javascript():
    subprocess.run(["node", "--check", str(SNIPPET)], check=True)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_snippet_on_a_bare_page():
    out = subprocess.run(
        ["node", "-e", NODE_PAGE, str(SNIPPET)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out)
    assert result["added"] == ["smstrack"]
    collect = "https://go.example.com/smstrack/collect"
    assert result["beacons"] == [
        [collect, {"type": "landing", "click_id": "abc123"}],
        [
            collect,
            {"type": "conversion", "click_id": "abc123", "revenue": "9.50", "currency": "EUR"},
        ],
    ]
    assert result["cookie"].startswith("_smsclid=abc123;path=/;")
    assert "Secure" in result["cookie"]
