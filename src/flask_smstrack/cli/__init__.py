"""The ``flask smstrack`` command group, split by topic.

Each topic module adds its commands to :data:`smstrack_cli` when imported.
"""
from . import (  # noqa: F401  (registers the commands)
    campaigns,
    demo,
    links,
    optouts,
    partitions,
    report_import,
    retention,
    sms,
    status,
    subjects,
    timing,
    users,
    worker,
)
from .base import smstrack_cli

__all__ = ["smstrack_cli"]
