"""Tracked short links, conversions and ROI reports for SMS campaigns."""
from .extension import SmsTrack
from .models import ApiKey, Campaign, Click, Conversion, Link, User
from .tracking.conversions import ConversionResult

__all__ = [
    "ApiKey",
    "Campaign",
    "Click",
    "Conversion",
    "ConversionResult",
    "Link",
    "SmsTrack",
    "User",
]
