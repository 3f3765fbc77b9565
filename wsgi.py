"""The standalone flask-smstrack app: ``gunicorn wsgi:app``.

Configured from the environment (see ``flask_smstrack.standalone``):
``DATABASE_URL`` (default: SQLite in ``instance/``), ``SECRET_KEY``, any
``SMSTRACK_*`` key of the README's config table, and ``SMSTRACK_PROXY_HOPS``
for deployments behind a proxy.
"""
import gc

from flask_smstrack.standalone import create_app, db, smstrack

__all__ = ["app", "create_app", "db", "smstrack"]

app = create_app(import_name=__name__)
# Everything made so far lives as long as the process: keep it out of the
# garbage collector's full passes, which otherwise walk ~100,000 objects of
# the app and its libraries every few thousand requests.
gc.freeze()
