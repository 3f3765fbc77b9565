"""Tracked short links, conversions and ROI reports for SMS campaigns."""
from .config import Keys, SmsTrackConfigWarning
from .errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SmsTrackError,
    Unauthorized,
    UnsupportedMediaType,
)
from .extension import SmsTrack
from .models import ApiKey, Campaign, Click, Conversion, Link, User
from .tracking.conversions import ConversionResult

__all__ = [
    "ApiKey",
    "Campaign",
    "Click",
    "Conflict",
    "Conversion",
    "ConversionResult",
    "Forbidden",
    "InvalidInput",
    "Keys",
    "Link",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "SmsTrack",
    "SmsTrackConfigWarning",
    "SmsTrackError",
    "Unauthorized",
    "UnsupportedMediaType",
    "User",
]
