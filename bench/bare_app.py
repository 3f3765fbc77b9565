"""Baseline for bench/run.py: a bare Flask app that answers GET /s/<code> with a 302.

With ``SMSTRACK_PROXY_HOPS`` (``--addresses``) it sits behind that many proxies
(Werkzeug's ``ProxyFix``), as the tracked app then does.
"""
import os

from flask import Flask, redirect
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask(__name__)
hops = int(os.environ.get("SMSTRACK_PROXY_HOPS", "0"))
if hops:
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)


@app.get("/s/<code>")
def short_link(code):
    response = redirect("https://example.com/landing?x=1", 302)
    response.headers["Cache-Control"] = "no-store"
    return response
