"""The job queue behind :func:`flask_smstrack.state.enqueue`.

A job is a function named by its dotted path (``"package.module:function"``)
with plain arguments (numbers, strings, lists, dicts), so that a worker on
another node can run it. Jobs are idempotent: running one twice does no harm.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from ..state import resolve_job

logger = logging.getLogger("flask_smstrack")


class Jobs:
    """Runs jobs for one app: inline, in the caller's app context."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def enqueue(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run the job ``name`` with ``args``; returns its result."""
        return resolve_job(name)(*args, **kwargs)
