"""Baseline for bench/run.py: a bare Flask app that answers GET /s/<code> with a 302."""

from flask import Flask, redirect

app = Flask(__name__)


@app.get("/s/<code>")
def short_link(code):
    response = redirect("https://example.com/landing?x=1", 302)
    response.headers["Cache-Control"] = "no-store"
    return response
