"""The ``flask smstrack`` command group, split by topic."""
from .commands import smstrack_cli

__all__ = ["smstrack_cli"]
