"""Where the plugin's own static files and templates are.

In a wheel they are inside the package (``flask_smstrack/static``,
``flask_smstrack/templates``); in a source checkout they are the top-level
``static/`` and ``templates/`` folders.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def asset_dir(kind: str) -> Path:
    """The ``static`` or ``templates`` folder that holds ``smstrack/``."""
    inside = _PACKAGE / kind
    if (inside / "smstrack").is_dir():
        return inside
    return _PACKAGE.parents[1] / kind


SNIPPET_PATH = asset_dir("static") / "smstrack" / "t.js"
