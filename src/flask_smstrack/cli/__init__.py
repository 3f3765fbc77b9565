"""The ``flask smstrack`` command group, split by topic.

Each topic module adds its commands to :data:`smstrack_cli` when imported.
"""
from . import campaigns, demo, links, optouts, retention, sms, status, subjects, users, worker  # noqa: F401  (registers the commands)
from .base import smstrack_cli

__all__ = ["smstrack_cli"]
