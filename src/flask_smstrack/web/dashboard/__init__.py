"""The dashboard blueprint, split by page."""
from .views import bp

__all__ = ["bp"]
