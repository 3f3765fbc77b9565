"""A shop's landing site on another origin than the tracker, for the
browser test::

    LANDING_TRACKER_URL=http://127.0.0.1:8000 gunicorn landing:app

``/spring`` is where the SMS link leads; it embeds the snippet the way
DESIGN.md tells site owners to. Its "Buy now" button leads to ``/thanks``, the
thank-you page, which reports the purchase through the queue stub, before the
async script has loaded, and without the click id in its URL (the snippet
finds it in its own cookie).
"""
from __future__ import annotations

import os

from flask import Flask, render_template_string, request

app = Flask(__name__)
TRACKER = os.environ["LANDING_TRACKER_URL"].rstrip("/")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<link rel="icon" href="data:,">
<script async src="{{ tracker }}/smstrack/t.js"></script>
<script>
  window.smstrack = window.smstrack || function () { (smstrack.q = smstrack.q || []).push(arguments) };
{%- if order_id %}
  smstrack('conversion', { event: 'purchase', revenue: '49.90', currency: 'USD', order_id: {{ order_id|tojson }} });
{%- endif %}
</script>
</head>
<body>
<h1>{{ title }}</h1>
{% if order_id %}
<p id="order">Order {{ order_id }} is confirmed.</p>
{% else %}
<form action="/thanks" method="get">
  <input type="hidden" name="order_id" value="A-1001">
  <button id="buy" type="submit">Buy now</button>
</form>
{% endif %}
</body>
</html>
"""


@app.get("/spring")
def spring() -> str:
    return render_template_string(PAGE, title="Spring sale", tracker=TRACKER, order_id=None)


@app.get("/thanks")
def thanks() -> str:
    return render_template_string(PAGE, title="Thank you", tracker=TRACKER, order_id=request.args["order_id"])
